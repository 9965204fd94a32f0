"""Forms of the clip pages. They only parse what was typed; the services validate the clip itself."""

from django import forms

from studyapp.sites.models import Site


class DecimalInput(forms.NumberInput):
    def __init__(self, attrs=None):
        super().__init__({"step": "any", "inputmode": "decimal", **(attrs or {})})


class SiteChoiceField(forms.ModelChoiceField):
    def __init__(self, **kwargs):
        super().__init__(queryset=Site.objects.order_by("code"), required=False, **kwargs)

    def label_from_instance(self, site) -> str:
        return f"{site.code} · {site.name}"


class ClipUploadForm(forms.Form):
    file = forms.FileField(
        label="Clip file",
        help_text="Short-axis clip at the carpal tunnel inlet: ultrasound DICOM (.dcm, or no extension as "
                  "exported from PACS) or video (.mp4, .avi, .mov).")
    pixel_spacing_mm = forms.FloatField(
        label="Pixel spacing (mm/px)", required=False, widget=DecimalInput(attrs={"placeholder": "e.g. 0.125"}),
        help_text="Only for video without calibration; a DICOM's own spacing always wins. "
                  "You can also calibrate later by clicking two depth-scale marks.")
    site = SiteChoiceField(
        empty_label="From the DICOM header (or not known)",
        help_text="Where the clip was acquired. A DICOM whose InstitutionName a site lists is assigned from its "
                  "header; choose a site for video, or for a DICOM from an institution no site lists.")
    scanner_manufacturer = forms.CharField(label="Scanner manufacturer", max_length=120, required=False)
    scanner_model = forms.CharField(label="Scanner model", max_length=120, required=False)
    probe = forms.CharField(max_length=120, required=False)
    frequency_mhz = forms.FloatField(label="Frequency (MHz)", required=False, widget=DecimalInput())
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class SiteCorrectionForm(forms.Form):
    site = SiteChoiceField(empty_label="No site (missing)")
    scanner_manufacturer = forms.CharField(label="Scanner manufacturer", max_length=120, required=False)
    scanner_model = forms.CharField(label="Scanner model", max_length=120, required=False)
    reason = forms.CharField(max_length=100, help_text="Why it is corrected; kept in the clip's history with "
                                                       "your name.")
    expected_token = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, clip, **kwargs):
        from .services import acquisition_token

        super().__init__(*args, initial={"site": clip.site_id, "scanner_manufacturer": clip.scanner_manufacturer,
                                         "scanner_model": clip.scanner_model,
                                         "expected_token": acquisition_token(clip)}, **kwargs)


class SpacingForm(forms.Form):
    pixel_spacing_mm = forms.FloatField(label="Pixel spacing (mm/px)",
                                        widget=DecimalInput(attrs={"placeholder": "e.g. 0.125"}),
                                        help_text="Millimetres per pixel, the same along both axes.")


class AssignForm(forms.Form):
    annotator = forms.ModelChoiceField(
        queryset=None, required=False, label="Assigned to", empty_label="Nobody (open to any annotator)")

    def __init__(self, *args, clip, **kwargs):
        from .selectors import assignable_annotators

        super().__init__(*args, initial={"annotator": clip.assigned_to_id}, **kwargs)
        self.fields["annotator"].queryset = assignable_annotators(current=clip.assigned_to)
