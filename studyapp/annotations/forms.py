from django import forms

THIRD = "__third__"


class RoiAdjudicationForm(forms.Form):
    """Keep one rater's ROI on the frame, or place a third box by its centre."""

    keep = forms.ChoiceField(widget=forms.RadioSelect, label="Keep for the dataset")
    center_x = forms.FloatField(required=False, label="Third box: centre x (px)")
    center_y = forms.FloatField(required=False, label="Third box: centre y (px)")
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, raters: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["keep"].choices = [(name, f"{name}'s ROI") for name in raters] + [(THIRD, "A third box")]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("keep") == THIRD and (cleaned.get("center_x") is None or cleaned.get("center_y") is None):
            raise forms.ValidationError("Give the third box's centre (click the frame).", code="third_box_centre")
        return cleaned


class CsaAdjudicationForm(forms.Form):
    """Keep one rater's CSA of the hand, or a third value."""

    keep = forms.ChoiceField(widget=forms.RadioSelect, label="Keep for the CSA baseline")
    csa_mm2 = forms.FloatField(required=False, min_value=0.1, label="Third value: CSA (mm²)")
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, values: dict[str, float], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["keep"].choices = ([(name, f"{name}: {value:.1f} mm²") for name, value in values.items()]
                                       + [(THIRD, "A third value")])

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("keep") == THIRD and cleaned.get("csa_mm2") is None:
            raise forms.ValidationError("Give the third CSA value.", code="third_value")
        return cleaned
