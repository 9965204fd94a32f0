from rest_framework import serializers

from .models import Site


class SiteSerializer(serializers.ModelSerializer):
    institution_names = serializers.ListField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False), required=False,
        help_text="DICOM InstitutionName spellings meaning this site; matched ignoring case and spaces.")
    version = serializers.IntegerField(required=False, help_text="The version you loaded; an edit on an older "
                                                                 "one is refused with 409.")
    clip_count = serializers.SerializerMethodField(help_text="Clips acquired at this site.")

    class Meta:
        model = Site
        fields = ["id", "code", "name", "institution_names", "notes", "version", "clip_count", "created_at"]
        read_only_fields = ["created_at"]
        # Uniqueness is the service's (a readable error, even for a concurrent duplicate), not a pre-check here.
        extra_kwargs = {"code": {"validators": []}}

    def get_clip_count(self, site) -> int:
        counted = getattr(site, "clip_count", None)  # annotated by selectors.site_list
        return counted if counted is not None else site.clips.count()
