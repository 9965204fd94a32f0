from rest_framework import serializers

from studyapp.clips.models import Frame

from .models import NerveOutline, RoiAnnotation


class RoiSerializer(serializers.ModelSerializer):
    annotator = serializers.CharField(source="annotator.get_username", read_only=True)
    clip = serializers.IntegerField(source="frame.clip_id", read_only=True)
    index = serializers.IntegerField(source="frame.index", read_only=True)

    class Meta:
        model = RoiAnnotation
        fields = ["id", "frame", "clip", "index", "annotator", "x", "y", "w", "h", "status", "method", "score",
                  "version", "updated_at"]
        read_only_fields = fields


class RoiWriteSerializer(serializers.Serializer):
    """Place or move a ROI by its centre; the box size follows the study's crop size and the clip's spacing."""

    frame = serializers.PrimaryKeyRelatedField(queryset=Frame.objects.select_related("clip"))
    center_x = serializers.FloatField()
    center_y = serializers.FloatField()
    status = serializers.ChoiceField(choices=RoiAnnotation.Status.choices, default=RoiAnnotation.Status.KEYFRAME)
    version = serializers.IntegerField(required=False, allow_null=True, min_value=0,
                                       help_text="The version you loaded; omit when creating.")


class RoiStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=RoiAnnotation.Status.choices)
    version = serializers.IntegerField(min_value=1)


class OutlineSerializer(serializers.ModelSerializer):
    annotator = serializers.CharField(source="annotator.get_username", read_only=True)
    clip = serializers.IntegerField(source="frame.clip_id", read_only=True)
    points = serializers.ListField(child=serializers.ListField(child=serializers.FloatField(), min_length=2,
                                                               max_length=2), min_length=3, max_length=2000)

    class Meta:
        model = NerveOutline
        fields = ["id", "frame", "clip", "annotator", "points", "area_mm2", "csa_measurement", "created_at"]
        read_only_fields = ["area_mm2", "csa_measurement", "created_at"]
