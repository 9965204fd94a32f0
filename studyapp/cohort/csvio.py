"""CSV import and export of the cohort, one row per hand (tablib parses and writes the CSV).

Import is all-or-nothing: every row is checked through the same services as the UI, every error is
reported with its line, and a file with any bad row imports nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import tablib
from django.core.exceptions import ValidationError
from django.db import transaction

from . import services
from .models import Hand, Participant
from .selectors import hand_list

PARTICIPANT_COLUMNS = ["study_code", "sex", "age", "recruitment", "enrolled_on"]
HAND_COLUMNS = ["side", "exclusion_reason", "exclusion_detail"]
EPS_COLUMNS = ["eps_exam_date", "dml_ms", "sncv_m_s", "motor_response_absent", "sensory_response_absent"]
CSA_COLUMNS = ["csa_mm2", "csa_measured_on"]
IMPORT_COLUMNS = PARTICIPANT_COLUMNS + HAND_COLUMNS + EPS_COLUMNS + CSA_COLUMNS
REQUIRED_COLUMNS = ["study_code", "sex", "age", "recruitment", "side"]
DERIVED_COLUMNS = ["stage", "group", "staging_reason"]
EXPORT_COLUMNS = IMPORT_COLUMNS + DERIVED_COLUMNS
MAX_ROWS = 10_000

_TRUE = {"1", "true", "yes", "y"}
_FALSE = {"", "0", "false", "no", "n"}


@dataclass
class ImportResult:
    participants: int = 0
    hands: int = 0
    eps_exams: int = 0
    csa_measurements: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class _RowError(Exception):
    pass


class _Rollback(Exception):
    pass


def _text(row: dict, name: str) -> str:
    return (row.get(name) or "").strip()


def _number(row: dict, name: str, kind=float):
    text = _text(row, name)
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        raise _RowError(f"{name}: '{text}' is not a number") from None


def _date(row: dict, name: str) -> dt.date | None:
    text = _text(row, name)
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise _RowError(f"{name}: '{text}' is not a date (use YYYY-MM-DD)") from None


def _bool(row: dict, name: str) -> bool:
    text = _text(row, name).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _RowError(f"{name}: '{text}' is not yes/no")


def _describe(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return "; ".join(f"{name}: {' '.join(messages)}" for name, messages in error.message_dict.items())
    return " ".join(error.messages)


def parse_csv(content: bytes | str) -> tablib.Dataset:
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValueError("The file is not UTF-8 text; save it as CSV (UTF-8) and try again.") from None
    if not content.strip():
        raise ValueError("The file is empty.")
    try:
        dataset = tablib.Dataset().load(content, format="csv")
    except Exception as exc:  # tablib wraps csv errors in several types
        raise ValueError(f"The file is not a readable CSV: {exc}") from None
    headers = [h.strip() for h in (dataset.headers or [])]
    missing = [name for name in REQUIRED_COLUMNS if name not in headers]
    if missing:
        raise ValueError(f"Missing column(s): {', '.join(missing)}. Expected columns: {', '.join(IMPORT_COLUMNS)}.")
    unknown = [name for name in headers if name not in EXPORT_COLUMNS]
    if unknown:
        raise ValueError(f"Unknown column(s): {', '.join(unknown)}. Expected columns: {', '.join(IMPORT_COLUMNS)}.")
    if len(dataset) > MAX_ROWS:
        raise ValueError(f"The file has {len(dataset)} rows; import at most {MAX_ROWS} at a time.")
    dataset.headers = headers
    return dataset


def import_cohort(content: bytes | str, *, history_user=None) -> ImportResult:
    """Import participants, hands, EPS and CSA; on any error nothing is saved and every error is listed."""
    result = ImportResult()
    try:
        dataset = parse_csv(content)
    except ValueError as exc:
        result.errors.append(str(exc))
        return result
    try:
        with transaction.atomic():
            participants: dict[str, Participant] = {}
            for line, row in enumerate(dataset.dict, start=2):
                try:
                    with transaction.atomic():
                        _import_row(row, participants, result, history_user)
                except _RowError as exc:
                    result.errors.append(f"Line {line}: {exc}")
                except ValidationError as exc:
                    result.errors.append(f"Line {line}: {_describe(exc)}")
            if result.errors:
                raise _Rollback
    except _Rollback:
        result.participants = result.hands = result.eps_exams = result.csa_measurements = 0
    return result


def _import_row(row: dict, participants: dict[str, Participant], result: ImportResult, history_user) -> None:
    code = _text(row, "study_code")
    if not code:
        raise _RowError("study_code is required")
    fields = {"study_code": code, "sex": _text(row, "sex"), "age": _number(row, "age", int),
              "recruitment": _text(row, "recruitment")}
    enrolled_on = _date(row, "enrolled_on")
    if enrolled_on:
        fields["enrolled_on"] = enrolled_on
    participant = participants.get(code) or Participant.objects.filter(study_code=code).first()
    if participant is None:
        participant = services.participant_create(history_user=history_user, **fields)
        result.participants += 1
    else:
        clashes = [name for name in ("sex", "age", "recruitment") if getattr(participant, name) != fields[name]]
        if clashes:
            raise _RowError(f"{', '.join(clashes)} differ(s) from the participant {code} already given")
    participants[code] = participant

    side = _text(row, "side")
    if participant.pk and Hand.objects.filter(participant=participant, side=side).exists():
        raise _RowError(f"the {side} hand of {code} is already enrolled; edit it in the app instead")
    hand = services.hand_create(participant=participant, history_user=history_user, side=side,
                                exclusion_reason=_text(row, "exclusion_reason"),
                                exclusion_detail=_text(row, "exclusion_detail"))
    result.hands += 1

    eps = {"dml_ms": _number(row, "dml_ms"), "sncv_m_s": _number(row, "sncv_m_s"),
           "motor_response_absent": _bool(row, "motor_response_absent"),
           "sensory_response_absent": _bool(row, "sensory_response_absent")}
    exam_date = _date(row, "eps_exam_date")
    if exam_date is None and (eps["dml_ms"] is not None or eps["sncv_m_s"] is not None
                              or eps["motor_response_absent"] or eps["sensory_response_absent"]):
        raise _RowError("eps_exam_date is required when EPS values are given")
    if exam_date is not None:
        services.eps_exam_create(hand=hand, exam_date=exam_date, history_user=history_user, **eps)
        result.eps_exams += 1

    csa = _number(row, "csa_mm2")
    if csa is not None:
        measured = {"measured_on": _date(row, "csa_measured_on")} if _text(row, "csa_measured_on") else {}
        services.csa_measurement_create(hand=hand, csa_mm2=csa, measured_by=history_user,
                                        history_user=history_user, **measured)
        result.csa_measurements += 1
    elif _text(row, "csa_measured_on"):
        raise _RowError("csa_measured_on is given without csa_mm2")


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def export_cohort() -> tablib.Dataset:
    """The cohort, one row per hand with its current EPS exam, latest inlet CSA and derived stage/group."""
    dataset = tablib.Dataset(headers=EXPORT_COLUMNS)
    hands = hand_list().prefetch_related("eps_exams", "csa_measurements")
    for hand in hands:
        p = hand.participant
        exam = max(hand.eps_exams.all(), key=lambda e: (e.exam_date, e.id), default=None)
        inlet = [m for m in hand.csa_measurements.all() if m.site == "carpal_tunnel_inlet"]
        csa = max(inlet, key=lambda m: (m.measured_on, m.id), default=None)
        dataset.append([_cell(v) for v in (
            p.study_code, p.sex, p.age, p.recruitment, p.enrolled_on,
            hand.side, hand.exclusion_reason, hand.exclusion_detail,
            exam.exam_date if exam else None, exam.dml_ms if exam else None, exam.sncv_m_s if exam else None,
            exam.motor_response_absent if exam else None, exam.sensory_response_absent if exam else None,
            csa.csa_mm2 if csa else None, csa.measured_on if csa else None,
            hand.stage, hand.group, hand.staging_reason)])
    return dataset
