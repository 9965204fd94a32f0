"""The audit trail of one hand: every create, change and delete of it, its participant, exams and CSA."""

from __future__ import annotations

from dataclasses import dataclass

from .models import CsaMeasurement, EpsExam, Hand, Participant
from .serializers import DEMOGRAPHIC_FIELDS, DIAGNOSIS_HAND_FIELDS, DIAGNOSIS_PARTICIPANT_FIELDS

ACTIONS = {"+": "created", "~": "changed", "-": "deleted"}
_SKIP = {"id", "created_at", "staged_at", "updated_at", "version"}


@dataclass(frozen=True)
class Change:
    field: str
    old: object
    new: object


@dataclass(frozen=True)
class AuditEntry:
    when: object
    who: str
    action: str
    subject: str
    changes: list[Change]
    reason: str


def _fields(model) -> list:
    return [f for f in model._meta.concrete_fields if f.name not in _SKIP]


def _value(record, field):
    value = getattr(record, field.attname)
    if field.choices and value is not None:
        return dict(field.flatchoices).get(value, value) or "—"
    return "—" if value in (None, "") else value


def _entries(history, subject, hidden=()):
    for record in history.select_related("history_user"):
        model = record.instance_type
        fields = [f for f in _fields(model) if f.name not in hidden]
        previous = record.prev_record if record.history_type == "~" else None
        if previous is not None:
            # Compared here rather than with diff_against, which skips the derived (non-editable) fields.
            changes = [Change(f.verbose_name, _value(previous, f), _value(record, f))
                       for f in fields if getattr(previous, f.attname) != getattr(record, f.attname)]
            if not changes:
                continue
        elif record.history_type == "-":
            changes = [Change(f.verbose_name, _value(record, f), "—") for f in fields]
        else:
            changes = [Change(f.verbose_name, "—", _value(record, f)) for f in fields]
        who = record.history_user.get_username() if record.history_user else "system"
        yield AuditEntry(when=record.history_date, who=who, action=ACTIONS[record.history_type],
                         subject=subject(record), changes=changes, reason=record.history_change_reason or "")


# What staging writes on a hand, besides the fields the API hides: the thresholds it used.
_STAGING_FIELDS = (*DIAGNOSIS_HAND_FIELDS, "staged_dml_threshold_ms", "staged_sncv_threshold_m_s")


def hand_audit_trail(hand: Hand, *, include_demographics: bool, blinded_rater=None) -> list[AuditEntry]:
    """Newest first; deleted exams and measurements stay in the trail.

    For a `blinded_rater` the trail leaves out the diagnosis: staging, eligibility, recruitment, EPS exams,
    and every CSA value but their own.
    """
    hidden = () if include_demographics else DEMOGRAPHIC_FIELDS
    csa_history = CsaMeasurement.history.filter(hand_id=hand.id)
    if blinded_rater is not None:
        hidden = (*hidden, *DIAGNOSIS_PARTICIPANT_FIELDS)
        csa_history = csa_history.filter(measured_by_id=blinded_rater.pk)
    entries = [
        *_entries(Participant.history.filter(id=hand.participant_id), lambda r: f"Participant {r.study_code}",
                  hidden),
        *_entries(Hand.history.filter(id=hand.id), lambda r: f"{r.side.capitalize()} hand",
                  _STAGING_FIELDS if blinded_rater is not None else ()),
        *([] if blinded_rater is not None else
          _entries(EpsExam.history.filter(hand_id=hand.id), lambda r: f"EPS exam of {r.exam_date}")),
        *_entries(csa_history, lambda r: f"CSA measurement of {r.measured_on}"),
    ]
    return sorted(entries, key=lambda e: e.when, reverse=True)
