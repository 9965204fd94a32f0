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


def hand_sites(hand_ids) -> dict[int, set[int | None]]:
    """The site ids of each hand's clips (None: a clip without a site), in one query, for the external split.

    A hand with more than one site, or with None among them, can't be placed on one side of a split by site.
    """
    from studyapp.clips.models import Clip

    sites: dict[int, set[int | None]] = {}
    for hand_id, site_id in Clip.objects.filter(hand_id__in=list(hand_ids)).values_list("hand_id", "site_id"):
        sites.setdefault(hand_id, set()).add(site_id)
    return sites
