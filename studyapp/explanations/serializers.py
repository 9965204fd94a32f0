from django.urls import reverse
from rest_framework import serializers

from studyapp.experiments.models import TrainingRun

from .models import ExplanationJob, FrameExplanation

FILE_KINDS = ("crop", "heatmap", "overlay", "attribution")


class ExplanationJobSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="run.model_name", read_only=True)
    experiment = serializers.IntegerField(source="run.experiment_id", read_only=True)

    class Meta:
        model = ExplanationJob
        fields = ["id", "run", "experiment", "model", "method", "status", "frames_done", "frames_total", "error",
                  "cancel_requested", "task_id", "worker", "params", "seed", "library_versions", "device", "sanity",
                  "created_at", "started_at", "finished_at"]
        read_only_fields = fields


class ExplanationQueueSerializer(serializers.Serializer):
    run = serializers.PrimaryKeyRelatedField(queryset=TrainingRun.objects.all())
    methods = serializers.ListField(child=serializers.ChoiceField(choices=ExplanationJob.Method.choices),
                                    required=False, allow_empty=False,
                                    help_text="Default: all three methods.")
    params = serializers.DictField(child=serializers.DictField(), required=False,
                                   help_text="{method: {parameter: value}}, e.g. {\"lime\": {\"num_samples\": 200}}.")


class FrameExplanationSerializer(serializers.ModelSerializer):
    run = serializers.IntegerField(source="job.run_id", read_only=True)
    model = serializers.CharField(source="job.run.model_name", read_only=True)
    method = serializers.CharField(source="job.method", read_only=True)
    frame_index = serializers.IntegerField(source="frame.index", read_only=True)
    clip = serializers.IntegerField(source="frame.clip_id", read_only=True)
    study_code = serializers.CharField(source="hand.participant.study_code", read_only=True)
    side = serializers.CharField(source="hand.side", read_only=True)
    group = serializers.CharField(source="hand.group", read_only=True)
    stage = serializers.IntegerField(source="hand.stage", read_only=True)
    files = serializers.SerializerMethodField()

    class Meta:
        model = FrameExplanation
        fields = ["id", "job", "run", "model", "method", "frame", "frame_index", "clip", "hand", "study_code", "side",
                  "group", "stage", "box", "mm_per_px", "probability", "label", "frame_outcome", "hand_probability",
                  "hand_outcome", "shares", "outline_source", "outline_frame", "files", "created_at"]
        read_only_fields = fields

    def get_files(self, row) -> dict[str, str]:
        """Where the images and the map are served (role-checked views, never public media)."""
        return {kind: reverse("explanations:frame-file", args=[row.pk, kind]) for kind in FILE_KINDS}
