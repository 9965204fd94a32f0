from django import forms

from studyapp.protocol.models import StudySettings

from .models import CsaMeasurement, EpsExam, Hand, Participant


class DateInput(forms.DateInput):
    """The browser's date picker, pre-filled in ISO format whatever the locale."""

    input_type = "date"

    def __init__(self, attrs=None):
        # `<input type=date>` only reads YYYY-MM-DD: the en-gb 29/11/2026 shows blank and is lost on save.
        super().__init__(attrs, format="%Y-%m-%d")


class VersionedForm(forms.ModelForm):
    """Carries the version the page was loaded with, so a save on an outdated page is refused, not applied."""

    version = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=1)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["version"].initial = self.instance.version

    def edited(self) -> dict:
        """The fields this save changes (PATCH semantics), without the version."""
        return {name: self.cleaned_data[name] for name in self.changed_data if name in self._meta.fields}

    def show_stale(self, error) -> None:
        """Re-show what the person typed, with what changed meanwhile; a second save applies it."""
        self.data = self.data.copy()
        self.data["version"] = error.current.version
        self.add_error(None, str(error))
        for change in error.changes:
            if change.field in self.fields:
                self.add_error(change.field, f"Changed meanwhile: now {_shown(change.after)} "
                                             f"(was {_shown(change.before)} when you opened this page).")


def _shown(value) -> str:
    return "empty" if value in (None, "") else str(value)


class ParticipantForm(VersionedForm):
    enroll_left = forms.BooleanField(required=False, initial=True, label="Enroll left hand")
    enroll_right = forms.BooleanField(required=False, initial=True, label="Enroll right hand")

    class Meta:
        model = Participant
        fields = ["study_code", "sex", "age", "recruitment", "enrolled_on"]
        widgets = {"enrolled_on": DateInput()}

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is None and not (cleaned.get("enroll_left") or cleaned.get("enroll_right")):
            raise forms.ValidationError("Enroll at least one hand.", code="no_hand")
        return cleaned


class HandForm(forms.ModelForm):
    class Meta:
        model = Hand
        fields = ["side", "exclusion_reason", "exclusion_detail"]
        widgets = {"exclusion_detail": forms.Textarea(attrs={"rows": 2})}


class HandExclusionForm(VersionedForm):
    class Meta:
        model = Hand
        fields = ["exclusion_reason", "exclusion_detail"]
        widgets = {"exclusion_detail": forms.Textarea(attrs={"rows": 2})}


class EpsExamForm(VersionedForm):
    class Meta:
        model = EpsExam
        fields = ["exam_date", "dml_ms", "sncv_m_s", "motor_response_absent", "sensory_response_absent"]
        widgets = {"exam_date": DateInput(),
                   "dml_ms": forms.NumberInput(attrs={"step": "0.01"}),
                   "sncv_m_s": forms.NumberInput(attrs={"step": "0.1"})}


class CsaMeasurementForm(forms.ModelForm):
    class Meta:
        model = CsaMeasurement
        fields = ["csa_mm2", "site", "measured_on"]
        widgets = {"measured_on": DateInput(), "csa_mm2": forms.NumberInput(attrs={"step": "0.1"})}


class StudySettingsForm(forms.ModelForm):
    class Meta:
        model = StudySettings
        fields = ["dml_threshold_ms", "sncv_threshold_m_s", "frames_per_clip", "crop_size_mm", "csa_baseline_method"]
        fields += ["primary_rater_rule", "primary_rater", "raters_blinded", "adjudication_iou_threshold",
                   "adjudication_csa_difference_mm2"]
        fields += ["explain_frames_occlusion", "explain_frames_lime", "explain_frames_gradcam", "perineural_ring_mm"]

    EXPLANATION_FIELDS = ("explain_frames_occlusion", "explain_frames_lime", "explain_frames_gradcam",
                          "perineural_ring_mm")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from studyapp.clips.selectors import assignable_annotators

        # Annotators only, plus whoever is named now (a role may have changed since).
        self.fields["primary_rater"].queryset = assignable_annotators(current=self.instance.primary_rater)
        self.fields["perineural_ring_mm"].required = False

    def clean(self):
        cleaned = super().clean()
        # A form posted without the explanation settings (an older client) keeps their current values;
        # an empty frames-per-hand field that was posted means "all".
        for name in self.EXPLANATION_FIELDS:
            if name not in self.data or (name == "perineural_ring_mm" and cleaned.get(name) is None):
                cleaned[name] = getattr(self.instance, name)
        return cleaned


class CsvImportForm(forms.Form):
    file = forms.FileField(help_text="UTF-8 CSV in the export's format.")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > 5 * 1024 * 1024:
            raise forms.ValidationError("The file is over 5 MB; split it.", code="too_large")
        return upload
