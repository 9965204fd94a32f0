"""Writes for sites: the PI creates, edits and deletes them; every change is audited and versioned."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import ProtectedError

from studyapp.common.concurrency import lock_current, refused_as_validation_error, save_fields

from . import institutions
from .models import Site

SITE_FIELDS = ("code", "name", "institution_names", "notes")
SITE_WRITE_LOCK = 0x5173  # pg advisory lock key of site writes


class SiteInUse(ValidationError):
    """Clips were acquired at the site: it stays (the API answers 409), so their external split keeps its sites."""

    def __init__(self, site: Site, clip_count: int) -> None:
        self.site = site
        self.clip_count = clip_count
        super().__init__(f"Site {site.code} is the site of {clip_count} clip{'s' if clip_count != 1 else ''}; it "
                         "can't be deleted. Correct those clips' site first, or keep the site.", code="site_in_use")


def _lock_sites() -> None:
    """Serialise site writes until the transaction ends: one institution name, one site, spans rows (no
    database constraint expresses it), so two saves must not both take a name."""
    if connection.vendor != "postgresql":
        return  # SQLite (the local default) lets one transaction write at a time already
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SITE_WRITE_LOCK])


def _taken_aliases(exclude_pk: int | None) -> dict[str, str]:
    taken: dict[str, str] = {}
    for code, names in Site.objects.exclude(pk=exclude_pk).values_list("code", "institution_names"):
        for name in names or []:
            taken[institutions.institution_key(name)] = code
    return taken


def _clean_aliases(value, *, exclude_pk: int | None) -> list[str]:
    if not isinstance(value, (list, tuple)):
        raise ValidationError({"institution_names": ValidationError(
            "Give the institution names as a list of texts.", code="not_a_list")})
    cleaned, problems = institutions.clean_aliases(value, taken=_taken_aliases(exclude_pk))
    if problems:
        raise ValidationError({"institution_names": [ValidationError(p.message, code=p.code) for p in problems]})
    return cleaned


def _assign(site: Site, fields: dict) -> None:
    unknown = set(fields) - set(SITE_FIELDS)
    if unknown:
        raise ValidationError({sorted(unknown)[0]: ValidationError(
            f"{', '.join(sorted(unknown))} can't be set on a site; only {', '.join(SITE_FIELDS)} can.",
            code="not_editable")})
    for name, value in fields.items():
        if name == "institution_names":
            value = _clean_aliases(value, exclude_pk=site.pk)
        elif isinstance(value, str):
            value = value.strip()
        setattr(site, name, value)


@transaction.atomic
def site_create(*, history_user=None, **fields) -> Site:
    """Create a site; its institution names must not already mean another site."""
    _lock_sites()
    site = Site()
    _assign(site, fields)
    site.full_clean()
    if history_user is not None:
        site._history_user = history_user
    with refused_as_validation_error(Site):  # the same code created at the same moment
        site.save()
    return site


@transaction.atomic
def site_update(*, site: Site, expected_version: int | None = None, history_user=None, **fields) -> Site:
    """Edit named fields of a site; an edit made on an older version is refused (StaleVersion)."""
    _lock_sites()
    current = lock_current(Site, site.pk, expected_version=expected_version, fields=SITE_FIELDS)
    if not fields:
        return current
    _assign(current, fields)
    with refused_as_validation_error(Site):
        return save_fields(current, fields, history_user=history_user)


@transaction.atomic
def site_delete(*, site: Site) -> None:
    """Delete a site no clip refers to; SiteInUse otherwise (the history keeps the deleted row)."""
    count = site.clips.count()
    if count:
        raise SiteInUse(site, count)
    try:
        with transaction.atomic():
            site.delete()
    except ProtectedError:  # a clip assigned to it since the count
        raise SiteInUse(site, site.clips.count()) from None
