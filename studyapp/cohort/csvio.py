"""CSV import and export of the cohort (tablib parses and writes the CSV).

One row per CSA measurement of a hand, with its provenance (site, method, rater, date); the participant, hand
and current-EPS columns repeat on each row of a hand, and a hand without CSA has one row with the CSA columns
empty. Import reads exactly that back. It is all-or-nothing: every row is checked against the same model rules
as the UI, every problem of every row is reported with its line, and a file with any bad row imports nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import tablib
from django.contrib.auth import get_user_model
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.db.models import Prefetch

from . import services
from .models import CsaMeasurement, EpsExam, Hand, Participant
from .selectors import hand_list

PARTICIPANT_COLUMNS = ["study_code", "sex", "age", "recruitment", "enrolled_on"]
HAND_COLUMNS = ["side", "exclusion_reason", "exclusion_detail"]
EPS_COLUMNS = ["eps_exam_date", "dml_ms", "sncv_m_s", "motor_response_absent", "sensory_response_absent"]
CSA_COLUMNS = ["csa_mm2", "csa_site", "csa_method", "csa_rater", "csa_measured_on"]
IMPORT_COLUMNS = PARTICIPANT_COLUMNS + HAND_COLUMNS + EPS_COLUMNS + CSA_COLUMNS
REQUIRED_COLUMNS = ["study_code", "sex", "age", "recruitment", "side"]
DERIVED_COLUMNS = ["stage", "group", "staging_reason"]
EXPORT_COLUMNS = IMPORT_COLUMNS + DERIVED_COLUMNS
MAX_ROWS = 10_000

# Model fields whose CSV column has another name, so a model's error names the column to fix.
_EPS_COLUMN_OF = {"exam_date": "eps_exam_date"}
_CSA_COLUMN_OF = {"site": "csa_site", "method": "csa_method", "measured_by": "csa_rater",
                  "measured_on": "csa_measured_on"}

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


class _Rollback(Exception):
    pass


class _Row:
    """One CSV line read into typed values; each problem is kept under its column and none stops the reading."""

    def __init__(self, line: int, cells: dict):
        self.line = line
        self.cells = cells
        self.problems: dict[str, list[str]] = {}

    def problem(self, column: str, message: str) -> None:
        self.problems.setdefault(column, []).append(message)

    def text(self, column: str) -> str:
        return (self.cells.get(column) or "").strip()

    def number(self, column: str, kind=float):
        text = self.text(column)
        if not text:
            return None
        try:
            return kind(text)
        except ValueError:
            self.problem(column, f"'{text}' is not a number")
            return None

    def date(self, column: str) -> dt.date | None:
        text = self.text(column)
        if not text:
            return None
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            self.problem(column, f"'{text}' is not a date (use YYYY-MM-DD)")
            return None

    def yes_no(self, column: str) -> bool:
        text = self.text(column).lower()
        if text not in _TRUE | _FALSE:
            self.problem(column, f"'{text}' is not yes/no")
        return text in _TRUE

    def model_errors(self, error: ValidationError, column_of: dict[str, str] | None = None) -> None:
        """Add a model's errors under their columns, except on a column already refused while reading."""
        if not hasattr(error, "error_dict"):
            for message in error.messages:
                self.problem("", message)
            return
        for name, messages in error.message_dict.items():
            column = "" if name == NON_FIELD_ERRORS else (column_of or {}).get(name, name)
            if column and column in self.problems:
                continue
            for message in messages:
                self.problem(column, message)

    def validate(self, instance, *, exclude: list[str], column_of: dict[str, str] | None = None) -> None:
        try:
            instance.full_clean(exclude=exclude)
        except ValidationError as error:
            self.model_errors(error, column_of)

    def __str__(self) -> str:
        """'Line N: ' and the row's problems in column order, those of the row as a whole last."""
        order = {column: i for i, column in enumerate(IMPORT_COLUMNS)}
        columns = sorted(self.problems, key=lambda column: order.get(column, len(order)))
        parts = [f"{column}: {message.rstrip('.')}" if column else message.rstrip(".")
                 for column in columns for message in self.problems[column]]
        return f"Line {self.line}: " + "; ".join(parts)


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
    importer = _Importer(result, history_user)
    try:
        with transaction.atomic():
            for line, cells in enumerate(dataset.dict, start=2):
                row = _Row(line, cells)
                importer.import_row(row)
                if row.problems:
                    result.errors.append(str(row))
            if result.errors:
                raise _Rollback
    except _Rollback:
        result.participants = result.hands = result.eps_exams = result.csa_measurements = 0
    return result


@dataclass
class _SeenHand:
    line: int
    values: dict
    hand: Hand | None  # None when its first row was refused


class _Importer:
    """Reads rows in file order; remembers the participants and hands the file has given so far."""

    def __init__(self, result: ImportResult, history_user):
        self.result = result
        self.history_user = history_user
        self.participants: dict[str, tuple[int, dict, Participant | None]] = {}
        self.hands: dict[tuple[str, str], _SeenHand] = {}
        self.users: dict[str, object] = {}

    def import_row(self, row: _Row) -> None:
        code = row.text("study_code")
        if not code:
            row.problem("study_code", "is required")
            return
        person = {"study_code": code, "sex": row.text("sex"), "age": row.number("age", int),
                  "recruitment": row.text("recruitment"), "enrolled_on": row.date("enrolled_on")}
        side = row.text("side")
        hand_values = {"exclusion_reason": row.text("exclusion_reason"),
                       "exclusion_detail": row.text("exclusion_detail")}
        eps = self._read_eps(row)
        csa = self._read_csa(row)

        participant = self._check_participant(row, person)
        seen = self.hands.get((code, side))
        if seen is not None:
            self._check_repeat(row, seen, code, side, {**hand_values, **(eps or {})}, csa)
        else:
            self._check_new_hand(row, participant, side, hand_values)
        if eps is not None and seen is None:
            row.validate(EpsExam(**eps), exclude=["hand"], column_of=_EPS_COLUMN_OF)
        if csa is not None:
            row.validate(CsaMeasurement(**csa), exclude=["hand"], column_of=_CSA_COLUMN_OF)

        if seen is None:
            self.hands[(code, side)] = seen = _SeenHand(row.line, {**hand_values, **(eps or {})}, None)
        if row.problems or (seen.line != row.line and seen.hand is None):
            return
        try:
            self._save(row, code, person, participant, seen, side, hand_values, eps, csa)
        except ValidationError as error:
            row.model_errors(error, {**_EPS_COLUMN_OF, **_CSA_COLUMN_OF})

    def _read_eps(self, row: _Row) -> dict | None:
        values = {"exam_date": row.date("eps_exam_date"), "dml_ms": row.number("dml_ms"),
                  "sncv_m_s": row.number("sncv_m_s"),
                  "motor_response_absent": row.yes_no("motor_response_absent"),
                  "sensory_response_absent": row.yes_no("sensory_response_absent")}
        given = any(row.text(column) for column in EPS_COLUMNS if column != "eps_exam_date")
        if not row.text("eps_exam_date"):
            if given:
                row.problem("eps_exam_date", "is required when EPS values are given")
            return None
        return values

    def _read_csa(self, row: _Row) -> dict | None:
        if not row.text("csa_mm2"):
            stray = [column for column in CSA_COLUMNS if row.text(column)]
            if stray:
                row.problem("csa_mm2", f"is required when {', '.join(stray)} {'is' if len(stray) == 1 else 'are'} "
                                       "given")
            return None
        values = {"csa_mm2": row.number("csa_mm2"),
                  # Files written before the method column existed hold scanner values.
                  "method": row.text("csa_method") or CsaMeasurement.Method.MANUAL}
        if row.text("csa_site"):
            values["site"] = row.text("csa_site")
        if row.text("csa_measured_on"):
            values["measured_on"] = row.date("csa_measured_on")
        rater = row.text("csa_rater")
        if rater:
            values["measured_by"] = self._user(row, rater)
        elif values["method"] == CsaMeasurement.Method.OUTLINE:
            row.problem("csa_rater", "is required for a traced outline (the username of who traced it)")
        else:
            values["measured_by"] = self.history_user  # a scanner value without a rater: the importer vouches
        return values

    def _user(self, row: _Row, username: str):
        if username not in self.users:
            self.users[username] = get_user_model().objects.filter(username=username).first()
        if self.users[username] is None:
            row.problem("csa_rater", f"no user '{username}'; give the username of an existing account")
        return self.users[username]

    def _check_participant(self, row: _Row, person: dict) -> Participant | None:
        code = person["study_code"]
        if code in self.participants:
            line, first, participant = self.participants[code]
            where = f"line {line}"
        else:
            participant = Participant.objects.filter(study_code=code).first()
            if participant is None:
                row.validate(Participant(**{k: v for k, v in person.items() if v is not None}), exclude=[])
                self.participants[code] = (row.line, person, None)
                return None
            first = {name: getattr(participant, name) for name in person}
            where = "the participant already enrolled"
        clashes = [name for name in ("sex", "age", "recruitment", "enrolled_on")
                   if None not in (person[name], first[name]) and person[name] != first[name]]
        if clashes:
            row.problem("", f"{', '.join(clashes)} of {code} differ(s) from {where}")
        return participant

    def _check_new_hand(self, row: _Row, participant: Participant | None, side: str, values: dict) -> None:
        code = row.text("study_code")
        if participant is not None and participant.hands.filter(side=side).exists():
            row.problem("side", f"the {side} hand of {code} is already enrolled; edit it in the app instead")
            return
        row.validate(Hand(side=side, **values), exclude=["participant"])

    def _check_repeat(self, row: _Row, seen: _SeenHand, code: str, side: str, values: dict,
                      csa: dict | None) -> None:
        differ = [_column(name) for name, value in values.items() if seen.values.get(name) != value]
        differ += [_column(name) for name in seen.values if name not in values]
        if differ:
            row.problem("", f"{', '.join(sorted(set(differ)))} differ(s) from line {seen.line}, the first row of "
                            f"{code} {side}: repeat the same hand and EPS values on every row of a hand")
        if csa is None:
            row.problem("", f"the {side} hand of {code} is already on line {seen.line}; a further row of a hand "
                            "adds a CSA measurement, and this one has none")

    def _save(self, row, code, person, participant, seen, side, hand_values, eps, csa) -> None:
        user = self.history_user
        if seen.hand is None:
            if participant is None:
                participant = services.participant_create(
                    history_user=user, **{k: v for k, v in person.items() if v is not None})
                line, first, _ = self.participants[code]
                self.participants[code] = (line, first, participant)
                self.result.participants += 1
            seen.hand = services.hand_create(participant=participant, history_user=user, side=side, **hand_values)
            self.result.hands += 1
            if eps is not None:
                services.eps_exam_create(hand=seen.hand, history_user=user, **eps)
                self.result.eps_exams += 1
        if csa is not None:
            services.csa_measurement_create(hand=seen.hand, history_user=user, **csa)
            self.result.csa_measurements += 1


def _column(name: str) -> str:
    return _EPS_COLUMN_OF.get(name, name)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def export_cohort() -> tablib.Dataset:
    """The cohort: a row per CSA measurement (one for a hand without), with the current EPS and derived stage."""
    dataset = tablib.Dataset(headers=EXPORT_COLUMNS)
    measurements = CsaMeasurement.objects.select_related("measured_by").order_by("measured_on", "id")
    hands = hand_list().prefetch_related("eps_exams", Prefetch("csa_measurements", queryset=measurements))
    for hand in hands:
        p = hand.participant
        exam = max(hand.eps_exams.all(), key=lambda e: (e.exam_date, e.id), default=None)
        shared = [p.study_code, p.sex, p.age, p.recruitment, p.enrolled_on,
                  hand.side, hand.exclusion_reason, hand.exclusion_detail,
                  exam.exam_date if exam else None, exam.dml_ms if exam else None, exam.sncv_m_s if exam else None,
                  exam.motor_response_absent if exam else None, exam.sensory_response_absent if exam else None]
        derived = [hand.stage, hand.group, hand.staging_reason]
        for m in hand.csa_measurements.all() or [None]:
            csa = ([m.csa_mm2, m.site, m.method, m.measured_by.get_username() if m.measured_by else None,
                    m.measured_on] if m else [None] * len(CSA_COLUMNS))
            dataset.append([_cell(v) for v in shared + csa + derived])
    return dataset
