from django.contrib import admin
from django.db import transaction
from simple_history.admin import SimpleHistoryAdmin

from . import services
from .models import CsaMeasurement, EpsExam, Hand, Participant


class RestagingAdmin(SimpleHistoryAdmin):
    """Admin edits bypass the services, so re-derive the affected hands' staging here too."""

    def hands_of(self, obj):
        return []

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            for hand in self.hands_of(obj):
                services.hand_restage(hand=hand, history_user=request.user)

    def delete_model(self, request, obj):
        with transaction.atomic():
            hands = list(self.hands_of(obj))
            super().delete_model(request, obj)
            for hand in hands:
                if Hand.objects.filter(pk=hand.pk).exists():
                    services.hand_restage(hand=hand, history_user=request.user)


@admin.register(Participant)
class ParticipantAdmin(RestagingAdmin):
    list_display = ["study_code", "sex", "age", "recruitment", "enrolled_on"]
    search_fields = ["study_code"]
    list_filter = ["recruitment", "sex"]

    def hands_of(self, obj):
        return obj.hands.all()


@admin.register(Hand)
class HandAdmin(RestagingAdmin):
    list_display = ["__str__", "group", "stage", "exclusion_reason"]
    list_filter = ["group", "stage", "exclusion_reason"]
    search_fields = ["participant__study_code"]
    readonly_fields = ["stage", "group", "staging_reason", "staged_dml_threshold_ms", "staged_sncv_threshold_m_s",
                       "staged_at"]

    def hands_of(self, obj):
        return [obj]


@admin.register(EpsExam)
class EpsExamAdmin(RestagingAdmin):
    list_display = ["hand", "exam_date", "dml_ms", "sncv_m_s", "motor_response_absent", "sensory_response_absent"]
    search_fields = ["hand__participant__study_code"]

    def hands_of(self, obj):
        return [obj.hand]


@admin.register(CsaMeasurement)
class CsaMeasurementAdmin(SimpleHistoryAdmin):
    list_display = ["hand", "csa_mm2", "site", "measured_on", "measured_by"]
    search_fields = ["hand__participant__study_code"]
