"""REST API of the cohort: the same services as the web UI, behind the same role permissions."""

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from studyapp.accounts.permissions import has_perms
from studyapp.common.concurrency import parse_version

from . import selectors, services
from .models import CsaMeasurement, EpsExam, Hand, Participant
from .serializers import (CsaMeasurementSerializer, EpsExamSerializer, HandSerializer, ParticipantSerializer,
                          RestageSerializer)


class VersionedMixin:
    """Edits name the version they were made on: `version` in the body or an If-Match header (the ETag).

    A stale edit gets 409 with the current record (common.api_errors); PATCH writes only the fields it names.
    """

    def expected_version(self, serializer) -> int | None:
        given = serializer.validated_data.pop("version", None)
        return given if given is not None else parse_version(self.request.headers.get("If-Match"))

    def perform_create(self, serializer):
        serializer.validated_data.pop("version", None)
        self.create_record(serializer)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if self.detail and isinstance(response.data, dict) and "version" in response.data \
                and response.status_code < 300:
            response["ETag"] = '"%d"' % response.data["version"]
        return response


class ParticipantFilter(django_filters.FilterSet):
    class Meta:
        model = Participant
        fields = ["recruitment", "sex"]


class ParticipantViewSet(VersionedMixin, viewsets.ModelViewSet):
    queryset = Participant.objects.all()
    serializer_class = ParticipantSerializer
    filterset_class = ParticipantFilter
    search_fields = ["study_code"]
    # Hidden fields drop out of filters, ordering and search for a role that cannot see them (common.visibility).
    ordering_fields = ["study_code", "age", "enrolled_on", "recruitment"]

    def create_record(self, serializer):
        serializer.instance = services.participant_create(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.participant_update(
            participant=serializer.instance, expected_version=self.expected_version(serializer),
            **serializer.validated_data)

    def perform_destroy(self, instance):
        services.participant_delete(participant=instance)


class HandFilter(django_filters.FilterSet):
    included = django_filters.BooleanFilter(method="filter_included")
    needs_restaging = django_filters.BooleanFilter(method="filter_needs_restaging")

    class Meta:
        model = Hand
        fields = ["group", "stage", "side", "participant", "exclusion_reason"]

    def filter_included(self, queryset, name, value):
        return queryset.filter(exclusion_reason="") if value else queryset.exclude(exclusion_reason="")

    def filter_needs_restaging(self, queryset, name, value):
        outdated = selectors.outdated_hands_q()
        return queryset.filter(outdated) if value else queryset.exclude(outdated)


class HandViewSet(VersionedMixin, viewsets.ModelViewSet):
    queryset = Hand.objects.select_related("participant")
    serializer_class = HandSerializer
    filterset_class = HandFilter
    search_fields = ["participant__study_code"]
    ordering_fields = ["participant__study_code", "stage", "group"]

    def create_record(self, serializer):
        serializer.instance = services.hand_create(**serializer.validated_data)

    def perform_update(self, serializer):
        expected = self.expected_version(serializer)
        data = dict(serializer.validated_data)
        data.pop("participant", None)
        serializer.instance = services.hand_update(hand=serializer.instance, expected_version=expected, **data)

    def perform_destroy(self, instance):
        services.hand_delete(hand=instance)


class EpsExamViewSet(VersionedMixin, viewsets.ModelViewSet):
    queryset = EpsExam.objects.select_related("hand")
    serializer_class = EpsExamSerializer
    filterset_fields = ["hand"]
    ordering_fields = ["exam_date"]

    def create_record(self, serializer):
        serializer.instance = services.eps_exam_create(**serializer.validated_data)

    def perform_update(self, serializer):
        expected = self.expected_version(serializer)
        data = dict(serializer.validated_data)
        data.pop("hand", None)
        serializer.instance = services.eps_exam_update(exam=serializer.instance, expected_version=expected, **data)

    def perform_destroy(self, instance):
        services.eps_exam_delete(exam=instance)


class CsaMeasurementViewSet(VersionedMixin, viewsets.ModelViewSet):
    queryset = CsaMeasurement.objects.select_related("hand", "measured_by")
    serializer_class = CsaMeasurementSerializer
    filterset_fields = ["hand", "site"]
    ordering_fields = ["measured_on", "csa_mm2"]

    def get_queryset(self):
        return selectors.csa_measurements_visible(super().get_queryset(), user=self.request.user)

    def create_record(self, serializer):
        serializer.instance = services.csa_measurement_create(measured_by=self.request.user,
                                                              **serializer.validated_data)

    def perform_update(self, serializer):
        expected = self.expected_version(serializer)
        data = dict(serializer.validated_data)
        data.pop("hand", None)
        serializer.instance = services.csa_measurement_update(measurement=serializer.instance,
                                                              expected_version=expected, **data)

    def perform_destroy(self, instance):
        services.csa_measurement_delete(measurement=instance)


class CohortFlowView(APIView):
    permission_classes = [has_perms("cohort.view_hand", selectors.DIAGNOSIS_PERM)]

    @extend_schema(responses={200: dict}, summary="Participant flow: screened, excluded, included per group")
    def get(self, request):
        return Response(selectors.cohort_flow())


class RestageView(APIView):
    """Re-stage hands with the current thresholds (after a settings change)."""

    permission_classes = [has_perms("cohort.change_hand", "protocol.change_studysettings", any_of=True)]

    @extend_schema(request=RestageSerializer, responses={200: dict})
    def post(self, request):
        serializer = RestageSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        hands = serializer.validated_data.get("hands") or selectors.hand_list(needs_restaging=True)
        changed = services.hands_restage(hands=hands)
        return Response({"restaged": changed})


def register(router):
    router.register("participants", ParticipantViewSet)
    router.register("hands", HandViewSet)
    router.register("eps-exams", EpsExamViewSet)
    router.register("csa-measurements", CsaMeasurementViewSet)
