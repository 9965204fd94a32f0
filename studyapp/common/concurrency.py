"""Optimistic concurrency for edited records, and database refusals turned into readable errors.

A versioned model has a `version` bumped on every edit. An edit names the version its author loaded; the
row is locked, compared and written with only the fields the edit names, so two people editing different
fields both land, and an edit made on an outdated copy is refused with what changed in between.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils.text import capfirst


@dataclass(frozen=True)
class Change:
    field: str
    label: str
    before: object
    after: object


class StaleVersion(Exception):
    """The record changed since the client loaded it."""

    code = "stale_version"

    def __init__(self, current: models.Model, expected: int, changes: list[Change], who=None):
        self.current = current
        self.expected = expected
        self.changes = changes
        name = current._meta.verbose_name
        what = "; ".join(f"{c.label}: {_shown(c.before)} → {_shown(c.after)}" for c in changes)
        super().__init__(
            f"This {name} was changed by {who or 'someone else'} since you loaded it (version {expected}, now "
            f"{current.version}){': ' + what if what else ''}. Check the current values, then save your change "
            "again.")


def _shown(value) -> str:
    return "—" if value in (None, "") else str(value)


def parse_version(value) -> int | None:
    """A version from a request body or an If-Match header (`"3"`, `W/"3"`, `3`); None when absent."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not text.isdigit():
        raise ValidationError({"version": ValidationError(
            "Give the version you loaded (a whole number, as in the record's `version` or its ETag).",
            code="invalid_version")})
    return int(text)


def changes_since(current: models.Model, expected: int, fields) -> tuple[list[Change], object]:
    """What the audit history says changed in `fields` between version `expected` and the current row."""
    history = getattr(current, "history", None)
    if history is None:
        return [], None
    loaded = history.filter(version=expected).order_by("-history_id").first()
    latest = history.order_by("-history_id").first()
    who = latest.history_user if latest is not None else None
    if loaded is None:
        return [], who
    changes = []
    for name in fields:
        field = current._meta.get_field(name)
        before, after = getattr(loaded, field.attname), getattr(current, field.attname)
        if before != after:
            changes.append(Change(name, capfirst(field.verbose_name), before, after))
    return changes, who


def lock_current(model: type[models.Model], pk, *, expected_version: int | None, fields):
    """The row, locked until the transaction ends; StaleVersion when `expected_version` is not its version.

    No expected version means the client did not ask for a check; the edit still writes only its fields.
    """
    # NO KEY UPDATE: a row being edited still takes new children (an exam inserted for a hand), without deadlock.
    current = model.objects.select_for_update(no_key=True).filter(pk=pk).first()
    if current is None:
        raise ValidationError(f"This {model._meta.verbose_name} was deleted by someone else meanwhile.",
                              code="deleted")
    if expected_version is not None and expected_version != current.version:
        changes, who = changes_since(current, expected_version, fields)
        raise StaleVersion(current, expected_version, changes, who)
    return current


def save_fields(instance: models.Model, names, *, history_user=None) -> models.Model:
    """Validate and write only `names` (and the bumped version); the history row records the whole new state."""
    instance.full_clean()
    if history_user is not None:
        instance._history_user = history_user
    instance.version += 1
    instance.save(update_fields=[*dict.fromkeys(names), "version"])
    return instance


def constraint_messages(model: type[models.Model]) -> dict[str, ValidationError]:
    """Each database constraint name of a model, with the error a person reads when it refuses a row."""
    messages = {}
    for constraint in model._meta.constraints:
        fields = getattr(constraint, "fields", ()) or ()
        field = fields[0] if len(fields) == 1 else None  # as full_clean reports it: one field, or the whole row
        error = ValidationError(constraint.get_violation_error_message(), code=constraint.violation_error_code)
        messages[constraint.name] = ValidationError({field: error}) if field else error
    for field in model._meta.local_fields:
        if field.unique and not field.primary_key:
            name = f"{model._meta.db_table}_{field.column}_key"  # PostgreSQL's name for a unique column
            messages[name] = ValidationError({field.name: ValidationError(
                field.error_messages["unique"] % {"model_name": capfirst(model._meta.verbose_name),
                                                  "field_label": capfirst(field.verbose_name)}, code="unique")})
    return messages


@contextmanager
def refused_as_validation_error(*models_):
    """Turn a constraint refused by the database (a concurrent duplicate) into the model's readable error.

    The block runs in a savepoint, so the surrounding transaction stays usable after the refusal.
    """
    try:
        with transaction.atomic():
            yield
    except IntegrityError as error:
        name = getattr(getattr(error.__cause__, "diag", None), "constraint_name", None)
        for model in models_:
            known = constraint_messages(model)
            if name in known:
                raise known[name] from error
        raise
