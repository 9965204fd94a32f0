"""The filters of explained frames, shared by the API and the gallery page."""

import django_filters

from studyapp.cohort.models import Hand

from .models import ExplanationJob, FrameExplanation, Outcome


class FrameExplanationFilter(django_filters.FilterSet):
    experiment = django_filters.NumberFilter(field_name="job__run__experiment")
    run = django_filters.NumberFilter(field_name="job__run")
    model = django_filters.CharFilter(field_name="job__run__model_name")
    method = django_filters.ChoiceFilter(field_name="job__method", choices=ExplanationJob.Method.choices)
    frame_outcome = django_filters.ChoiceFilter(choices=Outcome.choices)
    hand_outcome = django_filters.ChoiceFilter(choices=Outcome.choices)
    # The cohort's current group and stage, read when asked: a re-staged hand moves with its new stage.
    group = django_filters.ChoiceFilter(field_name="hand__group", choices=Hand.GroupChoice.choices)
    stage = django_filters.NumberFilter(field_name="hand__stage")
    hand = django_filters.NumberFilter(field_name="hand")
    outline_source = django_filters.ChoiceFilter(choices=FrameExplanation.OutlineSource.choices)

    class Meta:
        model = FrameExplanation
        fields = ["experiment", "run", "model", "method", "frame_outcome", "hand_outcome", "group", "stage", "hand",
                  "outline_source"]
