from rest_framework import serializers

from mlworker.ml.config import LR_MAX, LR_MIN
from mlworker.ml.constants import MODEL_NAMES
from mlworker.ml.normalise import SITE_NORMALISATIONS
from studyapp.clips.models import Clip
from studyapp.explanations.models import ExplanationJob

from .models import Experiment, Split, TrainingRun
from .services import MAX_NULL_CONTROLS, split_subsets, split_verify, split_verify_files


class SplitSerializer(serializers.ModelSerializer):
    """A split as lists show it: its counts, not its members nor its manifest (SplitViewSet annotates both)."""

    counts = serializers.SerializerMethodField()
    manifest_entries = serializers.SerializerMethodField()

    class Meta:
        model = Split
        fields = ["id", "name", "version", "supersedes", "seed", "test_per_group", "test_fraction",
                  "train_per_group", "status", "counts", "left_out", "manifest_hash", "manifest_entries",
                  "created_at", "locked_at", "kind", "domain", "train_domains"]
        read_only_fields = fields

    def get_counts(self, split) -> dict:
        counts = {s: {"control": 0, "cts": 0} for s in split_subsets(split)}
        for member in split.members.all():  # prefetched by the view set
            counts[member.subset]["cts" if member.label else "control"] += 1
        return counts

    def get_manifest_entries(self, split) -> int:
        if hasattr(split, "n_manifest_entries"):
            return split.n_manifest_entries or 0
        return len(split.manifest or [])


class SplitDetailSerializer(SplitSerializer):
    """One split with its member hands."""

    members = serializers.SerializerMethodField()

    class Meta(SplitSerializer.Meta):
        fields = [*SplitSerializer.Meta.fields[:10], "members", *SplitSerializer.Meta.fields[10:]]
        read_only_fields = fields

    def get_members(self, split) -> list[dict]:
        return [{"hand": m.hand_id, "participant": m.hand.participant_id, "subset": m.subset, "label": m.label}
                for m in split.members.all()]


class SplitCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    seed = serializers.IntegerField(min_value=0, default=0)
    test_per_group = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=10)
    test_fraction = serializers.FloatField(min_value=0.01, max_value=0.99, required=False, allow_null=True)
    train_per_group = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=40)
    supersedes = serializers.PrimaryKeyRelatedField(queryset=Split.objects.all(), required=False, allow_null=True)
    kind = serializers.ChoiceField(choices=Split.Kind.choices, default=Split.Kind.INTERNAL,
                                   help_text="external: train on the chosen sites or scanners, test on the others too.")
    domain = serializers.ChoiceField(choices=Split.Domain.choices, required=False, default="",
                                     help_text="What an external split is external by.")
    train_domains = serializers.ListField(child=serializers.CharField(max_length=250), required=False, default=list,
                                          help_text="Site codes or scanner names to train on (external splits).")


class SplitCheckSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    problems = serializers.ListField(child=serializers.CharField())
    files_checked = serializers.BooleanField(help_text="Whether every member frame's image was re-hashed.")


def split_check(split, *, files: bool = False) -> dict:
    problems = split_verify(split)
    if files and split.is_locked:
        problems += split_verify_files(split)
    return {"ok": not problems, "problems": problems, "files_checked": files}


RUN_FIELDS = ["id", "experiment", "model_name", "config", "random_init", "status", "epochs_done", "progress",
              "cancel_requested", "error", "resumed_from_epoch", "queued_at", "started_at", "finished_at",
              "weights_sha256", "manifest_hash", "code_version", "library_versions", "device", "images_per_s",
              "best_epoch"]
# What a list shows of a level's evaluation: the numbers, not the ROC curve nor the per-hand arrays.
SUMMARY_KEYS = ("n", "n_positive", "metrics", "confusion_matrix", "auc_delong_ci", "auc_ci_method", "ci")


def evaluation_summary(evaluation: dict | None) -> dict | None:
    """A run's evaluation without its curves and per-hand or per-frame arrays (lists carry this)."""
    if not evaluation:
        return None
    out = {"threshold": evaluation.get("threshold")}
    for level in ("frame", "hand"):
        if isinstance(evaluation.get(level), dict):
            out[level] = {key: evaluation[level][key] for key in SUMMARY_KEYS if key in evaluation[level]}
    external = evaluation.get("external")
    if isinstance(external, dict):  # a run on an external split: the other sites' hands, and the shift
        out["external"] = {**{k: v for k, v in evaluation_summary(external).items() if k != "threshold"},
                           **{key: external.get(key) for key in ("domains", "scanners", "shift")}}
    if isinstance(evaluation.get("normalisation"), dict):
        out["normalisation"] = evaluation["normalisation"]
    return out


class RunSummarySerializer(serializers.ModelSerializer):
    """A run as lists show it: its metrics with their CIs; the curves are on its own endpoint."""

    results = serializers.SerializerMethodField()

    class Meta:
        model = TrainingRun
        fields = [*RUN_FIELDS, "results"]
        read_only_fields = fields

    def get_results(self, run) -> dict | None:
        return evaluation_summary(run.evaluation)


class RunSerializer(serializers.ModelSerializer):
    """One run: its training history and evaluation with the curves; per-frame predictions are paginated apart
    (/api/models/<id>/predictions/)."""

    class Meta:
        model = TrainingRun
        fields = [*RUN_FIELDS, "history", "evaluation"]
        read_only_fields = fields


class PredictionSerializer(serializers.Serializer):
    frame = serializers.IntegerField()
    hand = serializers.IntegerField()
    label = serializers.IntegerField()
    probability = serializers.FloatField()


class ExperimentSerializer(serializers.ModelSerializer):
    """An experiment as lists show it: its runs' summaries; the comparison is on its own endpoint."""

    runs = RunSummarySerializer(many=True, read_only=True)
    split_version = serializers.CharField(source="split.__str__", read_only=True)

    class Meta:
        model = Experiment
        fields = ["id", "name", "split", "split_version", "manifest_hash", "config", "runs", "null_of",
                  "permutation_seed", "created_at"]
        read_only_fields = fields


class ExperimentDetailSerializer(ExperimentSerializer):
    """One experiment: its runs with curves and the comparison between them (DeLong, CSA baseline)."""

    runs = RunSerializer(many=True, read_only=True)

    class Meta(ExperimentSerializer.Meta):
        fields = [*ExperimentSerializer.Meta.fields, "comparison"]
        read_only_fields = fields


class HyperparametersSerializer(serializers.Serializer):
    epochs = serializers.IntegerField(min_value=1, max_value=500, required=False)
    batch_size = serializers.IntegerField(min_value=1, max_value=1024, required=False)
    lr = serializers.FloatField(min_value=LR_MIN, max_value=LR_MAX, required=False)
    optimizer = serializers.ChoiceField(choices=["adam", "adamw", "sgd"], required=False)
    weight_decay = serializers.FloatField(min_value=0, max_value=1, required=False)
    early_stopping_patience = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    seed = serializers.IntegerField(min_value=0, required=False)
    input_size = serializers.IntegerField(min_value=16, max_value=512, required=False)
    augment = serializers.BooleanField(required=False)
    checkpoint_every = serializers.IntegerField(min_value=1, max_value=500, required=False,
                                                help_text="Epochs between resumable checkpoints.")
    site_normalisation = serializers.ChoiceField(
        choices=list(SITE_NORMALISATIONS), required=False,
        help_text="Per-site intensity normalisation of the crops (external splits, whose manifest records sites).")


class ExperimentLaunchSerializer(serializers.Serializer):
    split = serializers.PrimaryKeyRelatedField(queryset=Split.objects.all())
    name = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
    models = serializers.ListField(child=serializers.ChoiceField(choices=list(MODEL_NAMES)), required=False,
                                   min_length=1)
    random_init = serializers.BooleanField(default=False, help_text="Train without ImageNet weights (recorded).")
    hyperparameters = HyperparametersSerializer(required=False)
    null_controls = serializers.IntegerField(
        min_value=0, max_value=MAX_NULL_CONTROLS, default=0,
        help_text="Also launch this many permuted-label controls (training labels shuffled; seeds 1..n).")


class PredictSerializer(serializers.Serializer):
    clip = serializers.PrimaryKeyRelatedField(queryset=Clip.objects.all())
    heatmaps = serializers.ListField(
        child=serializers.ChoiceField(choices=ExplanationJob.Method.choices), required=False, default=list,
        help_text="Explanation methods whose heatmap (base64 PNG) comes with each frame.")
