from rest_framework import serializers

# The hidden-field names live with the roles; audit.py reads them from here.
from studyapp.accounts.roles import (DEMOGRAPHIC_FIELDS, DIAGNOSIS_HAND_FIELDS,  # noqa: F401
                                     DIAGNOSIS_PARTICIPANT_FIELDS, hidden_fields)
from studyapp.protocol.models import StudySettings

from .models import CsaMeasurement, EpsExam, Hand, Participant
from .selectors import hand_needs_restaging


def _without(data: dict, names) -> dict:
    for name in names:
        data.pop(name, None)
    return data


class VersionedSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(
        required=False, min_value=1,
        help_text="The version you loaded; an edit of an older version is refused with 409 (or send If-Match).")


class ParticipantSerializer(VersionedSerializer):
    class Meta:
        model = Participant
        fields = ["id", "study_code", "sex", "age", "recruitment", "enrolled_on", "version"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        return _without(data, hidden_fields(request.user)) if request is not None else data


class HandSerializer(VersionedSerializer):
    study_code = serializers.CharField(source="participant.study_code", read_only=True)
    needs_restaging = serializers.SerializerMethodField()

    class Meta:
        model = Hand
        fields = ["id", "participant", "study_code", "side", "exclusion_reason", "exclusion_detail",
                  "stage", "group", "staging_reason", "needs_restaging", "staged_at", "version"]
        read_only_fields = ["stage", "group", "staging_reason", "staged_at"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        return _without(data, hidden_fields(request.user)) if request is not None else data

    def get_needs_restaging(self, hand) -> bool:
        # Read the study settings once per response, not once per hand of a page.
        root = self.root
        if not hasattr(root, "_current_thresholds"):
            root._current_thresholds = StudySettings.current().thresholds
        return hand_needs_restaging(hand, current=root._current_thresholds)

    def validate_participant(self, participant):
        if self.instance is not None and participant != self.instance.participant:
            raise serializers.ValidationError("A hand cannot move to another participant.", code="immutable")
        return participant


class EpsExamSerializer(VersionedSerializer):
    class Meta:
        model = EpsExam
        fields = ["id", "hand", "exam_date", "dml_ms", "sncv_m_s", "motor_response_absent",
                  "sensory_response_absent", "created_at", "version"]
        read_only_fields = ["created_at"]

    def validate_hand(self, hand):
        if self.instance is not None and hand != self.instance.hand:
            raise serializers.ValidationError("An exam cannot move to another hand.", code="immutable")
        return hand


class CsaMeasurementSerializer(VersionedSerializer):
    measured_by = serializers.StringRelatedField(read_only=True)

    class Meta:
        model = CsaMeasurement
        fields = ["id", "hand", "csa_mm2", "site", "method", "measured_on", "measured_by", "created_at", "version"]
        read_only_fields = ["method", "created_at"]  # typed values are scanner values; outlines come from tracing

    def validate_hand(self, hand):
        if self.instance is not None and hand != self.instance.hand:
            raise serializers.ValidationError("A measurement cannot move to another hand.", code="immutable")
        return hand


class RestageSerializer(serializers.Serializer):
    hands = serializers.PrimaryKeyRelatedField(queryset=Hand.objects.all(), many=True, required=False,
                                               help_text="Hands to re-stage; all outdated hands when omitted.")
