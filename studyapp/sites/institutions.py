"""Which site a DICOM InstitutionName means: the matching rule in one pure module (no Django).

Scanners spell a hospital's name as their installer typed it ("BAPTIST MED CTR", "Baptist  Med Ctr "), so
names are compared after folding case and collapsing white space; the site's alias list holds the spellings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

MAX_NAME_LENGTH = 120  # a Clip's institution_name holds this much (DICOM LO is 64; some exports are longer)


def institution_key(name: str | None) -> str:
    """The form two spellings of one institution share: case folded, inner white space single, ends trimmed."""
    return " ".join((name or "").split()).casefold()


@dataclass(frozen=True)
class AliasProblem:
    """An alias list refused: which value, why, and the error code a form shows."""

    value: str
    message: str
    code: str


def clean_aliases(names: Iterable[object], *, taken: Mapping[str, str]) -> tuple[list[str], list[AliasProblem]]:
    """The alias list as stored (trimmed, duplicates dropped, order kept), and what is wrong with it.

    `taken` maps institution_key -> code of another site already answering to that name: one name must
    mean one site, or an upload could not be assigned.
    """
    cleaned: list[str] = []
    problems: list[AliasProblem] = []
    seen: set[str] = set()
    for raw in names:
        if not isinstance(raw, str):
            problems.append(AliasProblem(str(raw), "Each institution name must be text.", "not_text"))
            continue
        name = " ".join(raw.split())
        key = institution_key(name)
        if not key:
            continue
        if any(ord(ch) < 32 for ch in raw if ch not in "\t\r\n"):
            problems.append(AliasProblem(name, "Contains invisible control characters; retype it.",
                                         "control_characters"))
        elif len(name) > MAX_NAME_LENGTH:
            problems.append(AliasProblem(name[:40] + "…", f"An institution name has at most {MAX_NAME_LENGTH} "
                                                           "characters.", "too_long"))
        elif key in taken:
            problems.append(AliasProblem(name, f'"{name}" already means site {taken[key]}; an institution name '
                                               "can belong to one site only.", "alias_taken"))
        elif key not in seen:
            seen.add(key)
            cleaned.append(name)
    return cleaned, problems


def match_site(institution_name: str | None, aliases_by_site: Mapping[int, Iterable[str]]) -> int | None:
    """The id of the site whose aliases contain this institution name (case/space-insensitive), else None."""
    key = institution_key(institution_name)
    if not key:
        return None
    for site_id, aliases in aliases_by_site.items():
        if any(institution_key(alias) == key for alias in aliases):
            return site_id
    return None
