from django.core.validators import ProhibitNullCharactersValidator
from django.urls import reverse
from rest_framework import serializers

from studyapp.sites.models import Site

from .models import Clip, Frame


class DetailText(serializers.CharField):
    """Typed text about a clip, parsed only: services.validate_details, shared by upload and edit, judges it."""

    def __init__(self, **kwargs):
        super().__init__(required=False, allow_blank=True, trim_whitespace=False, **kwargs)
        self.validators = [v for v in self.validators if not isinstance(v, ProhibitNullCharactersValidator)]


class ClipSerializer(serializers.ModelSerializer):
    # Parsed so that an edit naming a different site or scanner is refused (they change by correct-site).
    site = serializers.PrimaryKeyRelatedField(queryset=Site.objects.all(), allow_null=True, required=False)
    scanner_manufacturer = DetailText()
    scanner_model = DetailText()
    probe = DetailText()
    notes = DetailText()
    frequency_mhz = serializers.FloatField(required=False, allow_null=True)
    study_code = serializers.CharField(source="hand.participant.study_code", read_only=True)
    side = serializers.CharField(source="hand.side", read_only=True)
    site_code = serializers.CharField(source="site.code", read_only=True, allow_null=True, default=None)
    site_missing = serializers.SerializerMethodField(
        help_text="No site known: an external split can't place this clip's hand until it is corrected.")
    acquisition_token = serializers.SerializerMethodField(
        help_text="Fingerprint of site and scanner; send it with a correction to refuse one made meanwhile.")

    class Meta:
        model = Clip
        fields = ["id", "hand", "study_code", "side", "original_filename", "sha256", "size_bytes", "format",
                  "container", "frame_count", "fps", "width", "height", "is_grey", "pixel_spacing_row_mm",
                  "pixel_spacing_col_mm", "spacing_source", "site", "site_code", "site_source", "site_missing",
                  "acquisition_token", "institution_name", "scanner_manufacturer", "scanner_model", "probe", "frequency_mhz", "notes",
                  "uploaded_by", "uploaded_at", "extraction_status", "extraction_done", "extraction_total",
                  "extraction_error", "assigned_to"]
        # Assignment changes only through its rules (the clip page), never by PATCH.
        read_only_fields = [f for f in fields if f not in ("site", "scanner_manufacturer", "scanner_model", "probe",
                                                           "frequency_mhz", "notes")]

    def get_site_missing(self, clip) -> bool:
        return clip.site_id is None

    def get_acquisition_token(self, clip) -> str:
        from .services import acquisition_token

        return acquisition_token(clip)


class ClipUploadSerializer(serializers.Serializer):
    hand = serializers.PrimaryKeyRelatedField(queryset=Clip._meta.get_field("hand").related_model.objects.all())
    file = serializers.FileField(allow_empty_file=True)
    pixel_spacing_mm = serializers.FloatField(required=False, allow_null=True,
                                              help_text="mm per pixel, for plain video without calibration")
    site = serializers.PrimaryKeyRelatedField(
        queryset=Site.objects.all(), required=False, allow_null=True, default=None,
        help_text="Where it was acquired, for video or a DICOM whose InstitutionName no site lists; a DICOM "
                  "naming a known institution is assigned from its header.")
    scanner_manufacturer = DetailText(default="", help_text="Used when the file's header has none (video).")
    scanner_model = DetailText(default="")
    probe = DetailText(default="")
    frequency_mhz = serializers.FloatField(required=False, allow_null=True)
    notes = DetailText(default="")


class SiteCorrectionSerializer(serializers.Serializer):
    """An audited correction of where and on what a clip was acquired."""

    site = serializers.PrimaryKeyRelatedField(queryset=Site.objects.all(), allow_null=True,
                                              help_text="The right site; null clears it (site missing).")
    scanner_manufacturer = DetailText(default="")
    scanner_model = DetailText(default="")
    reason = serializers.CharField(trim_whitespace=False, allow_blank=True,
                                   help_text="Why: kept in the clip's history with your name (at most 100 characters).")
    expected_token = serializers.CharField(
        required=False, allow_blank=True,
        help_text="The clip's acquisition_token as you loaded it: refused (400, stale_version) if changed since.")


class DuplicateClipSerializer(serializers.Serializer):
    """The 409 answer to a file already uploaded."""

    code = serializers.CharField(help_text='"duplicate"')
    detail = serializers.CharField()
    existing_clip = serializers.IntegerField(help_text="Id of the clip this file already is.")


class CalibrationSerializer(serializers.Serializer):
    pixel_spacing_mm = serializers.FloatField(required=False, help_text="Enter the spacing directly, or:")
    p1 = serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2, required=False)
    p2 = serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2, required=False)
    distance_mm = serializers.FloatField(required=False)

    def validate(self, data):
        if "pixel_spacing_mm" in data:
            return data
        if not all(key in data for key in ("p1", "p2", "distance_mm")):
            raise serializers.ValidationError("Give pixel_spacing_mm, or p1, p2 and distance_mm.", code="required")
        return data


class FrameSerializer(serializers.ModelSerializer):
    image_url = serializers.SerializerMethodField()

    class Meta:
        model = Frame
        fields = ["id", "clip", "index", "timestamp_s", "width", "height", "channels", "image_url"]

    def get_image_url(self, frame) -> str:
        return reverse("clips:frame-image", args=[frame.pk])
