from django import forms

from studyapp.cohort.forms import VersionedForm

from .models import Site


class InstitutionNamesField(forms.CharField):
    """One DICOM InstitutionName per line, stored as a list (the service checks each name)."""

    widget = forms.Textarea(attrs={"rows": 3})

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, (list, tuple)) else value

    def to_python(self, value):
        if isinstance(value, (list, tuple)):
            return list(value)
        return [line.strip() for line in (value or "").splitlines() if line.strip()]


class SiteForm(VersionedForm):
    institution_names = InstitutionNamesField(
        required=False, label="DICOM institution names",
        help_text="One per line, as scanners write it in InstitutionName (case and spaces are ignored). An uploaded "
                  "DICOM carrying one of them is assigned to this site.")

    class Meta:
        model = Site
        fields = ["code", "name", "institution_names", "notes"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 2})}

    def validate_unique(self):
        """Uniqueness is the service's (it also catches a duplicate saved at the same moment)."""
