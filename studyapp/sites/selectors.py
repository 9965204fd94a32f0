"""Reads for sites: the list with clip counts, the site an institution name means, clips without a site."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from . import institutions
from .models import Site


def site_list() -> QuerySet[Site]:
    return Site.objects.annotate(clip_count=Count("clips")).order_by("code")


def site_for_institution(institution_name: str | None) -> Site | None:
    """The site whose institution names contain this one (case and white space ignored), else None."""
    if not institutions.institution_key(institution_name):
        return None
    aliases = dict(Site.objects.values_list("pk", "institution_names"))
    site_id = institutions.match_site(institution_name, aliases)
    return Site.objects.get(pk=site_id) if site_id is not None else None


def clips_without_site():
    """Clips no site is known for: an external split can't place their hands until they are corrected."""
    from studyapp.clips.models import Clip

    return Clip.objects.filter(site__isnull=True).select_related("hand__participant").order_by("pk")
