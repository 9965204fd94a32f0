from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from simple_history.models import HistoricalRecords

from studyapp.cohort.models import Hand


class SplitLocked(ValidationError):
    def __init__(self, split_id):
        super().__init__(f"Split {split_id} is locked: its membership and dataset are frozen. Make a new split "
                         "version instead.", code="split_locked")


class LockGuardedQuerySet(models.QuerySet):
    """Bulk writes can't slip past a split's lock either; subclasses say where the split's status is."""

    status_lookup = "status"
    split_id_field = "pk"

    def _refuse_locked(self):
        locked = self.filter(**{self.status_lookup: Split.Status.LOCKED}).values_list(
            self.split_id_field, flat=True).first()
        if locked is not None:
            raise SplitLocked(locked)

    def update(self, **kwargs):
        self._refuse_locked()
        return super().update(**kwargs)

    def delete(self):
        self._refuse_locked()
        return super().delete()


class Split(models.Model):
    """A hand-level train/test split; locking freezes its members and the dataset manifest they imply."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        LOCKED = "locked", "Locked"

    class Kind(models.TextChoices):
        INTERNAL = "internal", "Internal"
        EXTERNAL = "external", "External"

    class Domain(models.TextChoices):
        NONE = "", "None"
        SITE = "site", "Site"
        SCANNER = "scanner", "Scanner"

    name = models.CharField(max_length=120)
    version = models.PositiveIntegerField(default=1)
    supersedes = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="superseded_by")
    seed = models.PositiveIntegerField(default=0)
    test_per_group = models.PositiveIntegerField(null=True, blank=True, default=10)
    test_fraction = models.FloatField(null=True, blank=True)
    train_per_group = models.PositiveIntegerField(null=True, blank=True, default=40)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    # External validation: train (and test internally) on the chosen sites or scanners, test on the others.
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.INTERNAL)
    domain = models.CharField(max_length=8, choices=Domain.choices, blank=True, default="",
                              help_text="What an external split is external by.")
    train_domains = models.JSONField(default=list, blank=True,
                                     help_text="Site codes or scanner names trained on (external splits).")
    left_out = models.JSONField(default=list, blank=True, help_text="[{hand, study_code, side, reason}]")
    manifest = models.JSONField(null=True, blank=True)
    manifest_hash = models.CharField(max_length=64, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    locked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                  related_name="+")
    locked_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords(excluded_fields=["manifest"])

    objects = LockGuardedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        permissions = [("lock_split", "Can lock a split")]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="split_unique_name_version",
                                    violation_error_code="split_version_exists",
                                    violation_error_message="A split with this name and version exists; make a new "
                                                            "version."),
            models.CheckConstraint(condition=models.Q(status="draft") | ~models.Q(manifest_hash=""),
                                   name="split_locked_has_manifest", violation_error_code="locked_without_manifest",
                                   violation_error_message="A locked split records the manifest of its frames; lock "
                                                           "it through the split's lock action."),
            models.CheckConstraint(
                condition=(models.Q(kind="internal", domain="")
                           | (models.Q(kind="external") & ~models.Q(domain="") & ~models.Q(train_domains=[]))),
                name="split_external_has_domains", violation_error_code="external_without_domains",
                violation_error_message="An external split names what it is external by (site or scanner) and the "
                                        "sites or scanners it trains on; an internal split names neither."),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def is_locked(self) -> bool:
        return self.status == self.Status.LOCKED

    @property
    def is_external(self) -> bool:
        return self.kind == self.Kind.EXTERNAL

    def _stored_locked(self) -> bool:
        return self.pk is not None and Split.objects.filter(pk=self.pk, status=self.Status.LOCKED).exists()

    def save(self, *args, **kwargs):
        if self._stored_locked():
            raise SplitLocked(self.pk)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self._stored_locked():
            raise SplitLocked(self.pk)
        return super().delete(*args, **kwargs)


class SplitMemberQuerySet(LockGuardedQuerySet):
    status_lookup = "split__status"
    split_id_field = "split_id"


class SplitMember(models.Model):
    class Subset(models.TextChoices):
        TRAIN = "train", "Train"
        TEST = "test", "Test"
        EXTERNAL = "external", "External test"

    split = models.ForeignKey(Split, on_delete=models.CASCADE, related_name="members")
    hand = models.ForeignKey(Hand, on_delete=models.PROTECT, related_name="split_memberships")
    subset = models.CharField(max_length=8, choices=Subset.choices)
    label = models.PositiveSmallIntegerField(help_text="0 control, 1 CTS, as derived when the split was made.")

    objects = SplitMemberQuerySet.as_manager()

    class Meta:
        ordering = ["split", "subset", "hand"]
        constraints = [models.UniqueConstraint(fields=["split", "hand"], name="split_member_unique_hand",
                                               violation_error_code="hand_in_split",
                                               violation_error_message="This hand is already in this split.")]

    def __str__(self) -> str:
        return f"{self.hand} in {self.split} ({self.subset})"

    def save(self, *args, **kwargs):
        if self.split.is_locked or self.split._stored_locked():
            raise SplitLocked(self.split_id)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if Split.objects.filter(pk=self.split_id, status=Split.Status.LOCKED).exists():
            raise SplitLocked(self.split_id)
        return super().delete(*args, **kwargs)


class SplitFingerprint(models.Model):
    """What checking a locked split needs without rebuilding nor decoding its manifest.

    `inputs_sha256` is the fingerprint of the split's inputs (datasets.inputs_fingerprint) taken when the data
    were last found to give exactly the locked manifest (at the lock, or at a check that compared in full): the
    same fingerprint now means the same manifest. `hands` summarises the locked manifest per hand (participant,
    label, subset, number of entries) for launch estimates and counts.
    """

    split = models.OneToOneField(Split, on_delete=models.CASCADE, primary_key=True, related_name="fingerprint")
    manifest_hash = models.CharField(max_length=64, help_text="The locked manifest this was checked against.")
    inputs_sha256 = models.CharField(max_length=64)
    entries = models.PositiveIntegerField(help_text="Entries (frames) of the locked manifest.")
    hands = models.JSONField(default=list, help_text="[{hand, participant, label, subset, entries}]")
    checked_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    def __str__(self) -> str:
        return f"inputs of {self.split_id}: {self.inputs_sha256[:12]}"


class Experiment(models.Model):
    """One launch of the study's models on a locked split; the comparison between them lives here."""

    name = models.CharField(max_length=120)
    split = models.ForeignKey(Split, on_delete=models.PROTECT, related_name="experiments")
    manifest_hash = models.CharField(max_length=64, help_text="The split's manifest the runs were made on.")
    config = models.JSONField(default=dict, help_text="Hyperparameters shared by the runs.")
    comparison = models.JSONField(null=True, blank=True, help_text="DeLong tests and the CSA baseline.")
    # A negative control: the same pipeline with the training hands' labels permuted (test labels stay true).
    null_of = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="null_controls",
                                help_text="The experiment this one is a permuted-label control of.")
    permutation_seed = models.PositiveIntegerField(null=True, blank=True,
                                                   help_text="Seed of the training-label permutation (null control).")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("launch_experiment", "Can launch training")]

    def __str__(self) -> str:
        return f"{self.name} on {self.split}"

    @property
    def is_null_control(self) -> bool:
        return self.permutation_seed is not None


class TrainingRun(models.Model):
    """One model trained on a locked split: progress for the UI, then the registered model and its results."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    experiment = models.ForeignKey(Experiment, on_delete=models.PROTECT, related_name="runs")
    model_name = models.CharField(max_length=40)
    config = models.JSONField(help_text="The TrainConfig of this run.")
    random_init = models.BooleanField(default=False, help_text="Trained from random initialisation, not ImageNet.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    epochs_done = models.PositiveIntegerField(default=0)
    history = models.JSONField(default=list, blank=True)
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True, default="")
    task_id = models.CharField(max_length=64, blank=True, default="")
    worker = models.CharField(max_length=200, blank=True, default="")
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life while running.")
    lease_token = models.CharField(max_length=32, blank=True, default="", help_text="The holder's claim (common.jobs).")
    lease_expires_at = models.DateTimeField(null=True, blank=True,
                                            help_text="While running: renewed by the worker; once past, the run is resumed.")
    progress = models.JSONField(null=True, blank=True,
                                help_text="Within the epoch: batches, images/s, ETAs (ml.epoch_progress).")
    images_per_s = models.FloatField(null=True, blank=True,
                                     help_text="Measured training crops per second of epoch time; drives estimates.")
    runtime = models.JSONField(default=dict, blank=True,
                               help_text="Device, CPU threads and determinism flags a reproduction must match.")
    resumed_from_epoch = models.PositiveIntegerField(default=0)
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The registry: what was trained, on what, with what.
    weights = models.FileField(max_length=300, blank=True)
    weights_sha256 = models.CharField(max_length=64, blank=True, default="")
    manifest_hash = models.CharField(max_length=64, blank=True, default="")
    code_version = models.CharField(max_length=64, blank=True, default="")
    library_versions = models.JSONField(default=dict, blank=True)
    device = models.CharField(max_length=40, blank=True, default="")
    best_epoch = models.PositiveIntegerField(null=True, blank=True)
    evaluation = models.JSONField(null=True, blank=True)
    predictions = models.JSONField(null=True, blank=True, help_text="{frame_ids, hand_ids, labels, probabilities}")

    class Meta:
        ordering = ["experiment", "model_name"]
        constraints = [models.UniqueConstraint(fields=["experiment", "model_name"], name="run_one_model_per_experiment",
                                               violation_error_code="model_in_experiment",
                                               violation_error_message="This experiment already trains this model.")]

    def __str__(self) -> str:
        return f"{self.model_name} ({self.status}) in {self.experiment}"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED, self.Status.CANCELLED)
