from rest_framework import serializers

from studyapp.experiments.models import TrainingRun

from .models import ProspectiveModel


class ProspectiveModelSerializer(serializers.ModelSerializer):
    model_name = serializers.CharField(source="run.model_name", read_only=True)
    active = serializers.SerializerMethodField()
    frozen_by = serializers.StringRelatedField()

    class Meta:
        model = ProspectiveModel
        fields = ["id", "run", "model_name", "weights_sha256", "threshold", "frozen_settings", "supersedes",
                  "reason", "frozen_by", "frozen_at", "active"]
        read_only_fields = fields

    def get_active(self, model) -> bool:
        return not model.superseded_by.exists()


class ProspectiveFreezeSerializer(serializers.Serializer):
    run = serializers.PrimaryKeyRelatedField(queryset=TrainingRun.objects.all())
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class ProspectiveOutcomeSerializer(serializers.Serializer):
    label = serializers.IntegerField()
    group = serializers.CharField()
    eps_exam = serializers.IntegerField()
    scored_at = serializers.DateTimeField()
    eps_first_entered_at = serializers.DateTimeField()
    included = serializers.BooleanField()
    exclusion = serializers.CharField()


class ProspectivePredictionSerializer(serializers.Serializer):
    """A prospective prediction as its reader may see it: probability and label are null while sealed."""

    id = serializers.IntegerField()
    model = serializers.IntegerField()
    model_name = serializers.CharField()
    hand = serializers.IntegerField()
    study_code = serializers.CharField()
    side = serializers.CharField()
    created_at = serializers.DateTimeField()
    sealed = serializers.BooleanField()
    input_sha256 = serializers.CharField()
    weights_sha256 = serializers.CharField()
    probability = serializers.FloatField(allow_null=True)
    predicted_label = serializers.IntegerField(allow_null=True)
    outcome = ProspectiveOutcomeSerializer(allow_null=True)


class ProspectiveDashboardQuerySerializer(serializers.Serializer):
    model = serializers.PrimaryKeyRelatedField(queryset=ProspectiveModel.objects.all(), required=False)
    target_width = serializers.FloatField(min_value=0.01, max_value=1.0, default=0.2)
    level = serializers.FloatField(min_value=0.5, max_value=0.999, default=0.95)
