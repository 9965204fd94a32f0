"""CSV import and export of the cohort (the csv module reads, with line numbers; tablib writes the export).

One row per CSA measurement of a hand, with its provenance (site, method, rater, date); the participant, hand
and current-EPS columns repeat on each row of a hand, and a hand without CSA has one row with the CSA columns
empty. Import reads exactly that back. It is all-or-nothing: every row is checked against the same model rules
as the UI, every problem of every row is reported with its line, and a file with any bad row imports nothing.
A good file is written in bulk with its audit history, in one transaction.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field

import tablib
from django.contrib.auth import get_user_model
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.db.models import Prefetch
from django.db.models.functions import Upper
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from studyapp.common.concurrency import refused_as_validation_error
from studyapp.protocol.models import StudySettings

from . import staging
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
BATCH_SIZE = 2_000
# A cell a spreadsheet would run as a formula (OWASP CSV injection); the export puts an apostrophe before it.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

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


class _Row:
    """One CSV line read into typed values; each problem is kept under its column and none stops the reading."""

    def __init__(self, line: int, cells: dict):
        self.line = line
        self.cells = cells
        self.problems: dict[str, list[str]] = {}

    def problem(self, column: str, message: str) -> None:
        self.problems.setdefault(column, []).append(message)

    def text(self, column: str) -> str:
        return _text(self.cells.get(column))

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
        # Uniqueness is checked against what the importer read once; the check constraints' ranges are the
        # fields' validators and clean(), so a row costs no query (the database still refuses a race).
        try:
            instance.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
        except ValidationError as error:
            self.model_errors(error, column_of)

    def __str__(self) -> str:
        """'Line N: ' and the row's problems in column order, those of the row as a whole last."""
        order = {column: i for i, column in enumerate(IMPORT_COLUMNS)}
        columns = sorted(self.problems, key=lambda column: order.get(column, len(order)))
        parts = [f"{column}: {message.rstrip('.')}" if column else message.rstrip(".")
                 for column in columns for message in self.problems[column]]
        return f"Line {self.line}: " + "; ".join(parts)


@dataclass
class _Line:
    line: int
    cells: dict


def parse_csv(content: bytes | str) -> list[_Line]:
    """The rows of a cohort CSV with their line numbers; ValueError naming the line for a file that can't be read."""
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = content[:exc.start].count(b"\n") + 1
            raise ValueError(f"Line {line}: the file is not UTF-8 text (byte 0x{content[exc.start]:02x}); save it as "
                             "CSV (UTF-8) and try again.") from None
    if not content.strip():
        raise ValueError("The file is empty.")
    reader = csv.reader(io.StringIO(content.removeprefix("\ufeff"), newline=""))
    try:
        headers = [h.strip() for h in next(reader)]
        records = [(reader.line_num, cells) for cells in reader if any(cell.strip() for cell in cells)]
    except csv.Error as exc:
        raise ValueError(f"Line {reader.line_num}: the file is not a readable CSV ({exc}).") from None
    missing = [name for name in REQUIRED_COLUMNS if name not in headers]
    if missing:
        raise ValueError(f"Line 1: missing column(s): {', '.join(missing)}. Expected columns: "
                         f"{', '.join(IMPORT_COLUMNS)}.")
    unknown = [name for name in headers if name not in EXPORT_COLUMNS]
    if unknown:
        raise ValueError(f"Line 1: unknown column(s): {', '.join(unknown)}. Expected columns: "
                         f"{', '.join(IMPORT_COLUMNS)}.")
    twice = sorted({name for name in headers if headers.count(name) > 1})
    if twice:
        raise ValueError(f"Line 1: column(s) given twice: {', '.join(twice)}.")
    if len(records) > MAX_ROWS:
        raise ValueError(f"The file has {len(records)} rows; import at most {MAX_ROWS} at a time.")
    ragged = [f"Line {line}: {len(cells)} cells where the header has {len(headers)}; every row needs every column "
              "(leave a cell empty, but keep its comma)" for line, cells in records if len(cells) != len(headers)]
    ragged += [f"Line {line}: a cell holds a NUL character; remove it" for line, cells in records
               if any("\x00" in cell for cell in cells)]
    if ragged:
        raise ValueError("\n".join(ragged[:20]) + (f"\n… and {len(ragged) - 20} more." if len(ragged) > 20 else ""))
    return [_Line(line, dict(zip(headers, cells))) for line, cells in records]


def import_cohort(content: bytes | str, *, history_user=None) -> ImportResult:
    """Import participants, hands, EPS and CSA; on any error nothing is saved and every error is listed.

    Every row is checked first (the database read once for the codes, hands and raters the file names), then
    everything is written in bulk, with its audit history, in one transaction.
    """
    result = ImportResult()
    try:
        lines = parse_csv(content)
    except ValueError as exc:
        result.errors.extend(str(exc).split("\n"))
        return result
    importer = _Importer(result, history_user, lines)
    for line in lines:
        row = _Row(line.line, line.cells)
        importer.import_row(row)
        if row.problems:
            result.errors.append(str(row))
    if result.errors:
        return result
    try:
        with transaction.atomic(), refused_as_validation_error(Participant, Hand, EpsExam, CsaMeasurement):
            importer.write()
    except ValidationError as error:  # a concurrent enrolment took a code or a side the file gives
        result.errors.append("Nothing was imported: " + " ".join(error.messages))
        result.participants = result.hands = result.eps_exams = result.csa_measurements = 0
    return result


@dataclass
class _SeenHand:
    line: int
    values: dict
    hand: Hand | None  # None when its first row was refused
    exam: EpsExam | None = None


class _Importer:
    """Checks rows in file order, remembering what the file has given so far; writes once every row is good."""

    def __init__(self, result: ImportResult, history_user, lines: list[_Line]):
        self.result = result
        self.history_user = history_user
        codes = {_text(line.cells.get("study_code")) for line in lines} - {""}
        self.enrolled = {p.study_code.upper(): p for p in
                         Participant.objects.annotate(code=Upper("study_code")).filter(
                             code__in={code.upper() for code in codes})}
        self.enrolled_sides = set(Hand.objects.filter(participant__in=self.enrolled.values())
                                  .values_list("participant__study_code", "side"))
        raters = {_text(line.cells.get("csa_rater")) for line in lines} - {""}
        self.users = {user.get_username(): user for user in get_user_model().objects.filter(username__in=raters)}
        self.participants: dict[str, tuple[int, dict, Participant | None]] = {}
        self.codes_by_case: dict[str, tuple[str, int]] = {}
        self.rows_seen: dict[tuple, int] = {}
        self.hands: dict[tuple[str, str], _SeenHand] = {}
        self.measurements: list[CsaMeasurement] = []

    def import_row(self, row: _Row) -> None:
        code = row.text("study_code")
        if not code:
            row.problem("study_code", "is required")
            return
        same = tuple(row.text(column) for column in IMPORT_COLUMNS)
        if same in self.rows_seen:
            row.problem("", f"repeats line {self.rows_seen[same]} exactly; remove the copy")
            return
        self.rows_seen[same] = row.line
        if not self._check_code_case(row, code):
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
            row.validate(CsaMeasurement(**csa), exclude=["hand", "measured_by"], column_of=_CSA_COLUMN_OF)

        if seen is None:
            self.hands[(code, side)] = seen = _SeenHand(row.line, {**hand_values, **(eps or {})}, None)
        if row.problems or (seen.line != row.line and seen.hand is None):
            return
        self._plan(code, person, participant, seen, side, hand_values, eps, csa)

    def _check_code_case(self, row: _Row, code: str) -> bool:
        """One participant, one spelling: codes differing only in letter case are a typo, not two people."""
        enrolled = self.enrolled.get(code.upper())
        first, line = self.codes_by_case.setdefault(code.upper(), (code, row.line))
        if enrolled is not None and enrolled.study_code != code:
            row.problem("study_code", f"'{code}' differs only in letter case from {enrolled.study_code}, already "
                                      "enrolled; use the same code")
        elif first != code:
            row.problem("study_code", f"'{code}' differs only in letter case from {first} on line {line}; use the "
                                      "same code")
        return not row.problems

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
            row.problem("csa_rater", f"no user '{username}'; give the username of an existing account")
        return self.users.get(username)

    def _check_participant(self, row: _Row, person: dict) -> Participant | None:
        """The enrolled participant of the code (None for a new one); every row of a code must agree."""
        code = person["study_code"]
        enrolled = self.enrolled.get(code.upper())  # same spelling: _check_code_case refused any other
        if enrolled is not None:
            first, where = {name: getattr(enrolled, name) for name in person}, "the participant already enrolled"
        elif code in self.participants:
            line, first, _ = self.participants[code]
            where = f"line {line}"
        else:
            row.validate(Participant(**{k: v for k, v in person.items() if v is not None}), exclude=[])
            self.participants[code] = (row.line, person, None)
            return None
        clashes = [name for name in ("sex", "age", "recruitment", "enrolled_on")
                   if None not in (person[name], first[name]) and person[name] != first[name]]
        if clashes:
            row.problem("", f"{', '.join(clashes)} of {code} differ(s) from {where}")
        return enrolled

    def _check_new_hand(self, row: _Row, participant: Participant | None, side: str, values: dict) -> None:
        code = row.text("study_code")
        if participant is not None and (code, side) in self.enrolled_sides:
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

    def _plan(self, code, person, participant, seen, side, hand_values, eps, csa) -> None:
        """Build the row's records, unsaved: `write` saves them all at once."""
        if seen.hand is None:
            if participant is None:
                line, first, participant = self.participants[code]
                if participant is None:
                    participant = Participant(**{k: v for k, v in person.items() if v is not None})
                    self.participants[code] = (line, first, participant)
            seen.hand = Hand(participant=participant, side=side, **hand_values)
            seen.exam = EpsExam(hand=seen.hand, **eps) if eps is not None else None
        if csa is not None:
            self.measurements.append(CsaMeasurement(hand=seen.hand, **csa))

    def write(self) -> None:
        """Save every planned record in bulk with its audit row; hands carry the stage their exam gives."""
        user, thresholds, now = self.history_user, StudySettings.current().thresholds, timezone.now()
        participants = [p for _, _, p in self.participants.values() if p is not None and p.pk is None]
        seen = [s for s in self.hands.values() if s.hand is not None]
        for s in seen:
            assessment = staging.assess_hand(recruitment=s.hand.participant.recruitment,
                                             exclusion_reason=s.hand.exclusion_reason,
                                             eps=s.exam.findings if s.exam else None, thresholds=thresholds)
            s.hand.stage, s.hand.group = assessment.stage, assessment.group.value
            s.hand.staging_reason, s.hand.staged_at = assessment.reason, now
            s.hand.staged_dml_threshold_ms, s.hand.staged_sncv_threshold_m_s = thresholds.dml_ms, thresholds.sncv_m_s
        exams = [s.exam for s in seen if s.exam is not None]
        for model, objects in ((Participant, participants), (Hand, [s.hand for s in seen]), (EpsExam, exams),
                               (CsaMeasurement, self.measurements)):
            if objects:
                bulk_create_with_history(objects, model, batch_size=BATCH_SIZE, default_user=user)
        self.result.participants, self.result.hands = len(participants), len(seen)
        self.result.eps_exams, self.result.csa_measurements = len(exams), len(self.measurements)


def _text(value) -> str:
    return _unescaped((value or "").strip())


def _unescaped(text: str) -> str:
    """A cell as typed: the apostrophe the export puts before a formula-like text is not part of the value."""
    return text[1:] if text[:1] == "'" and text[1:2] in FORMULA_STARTS else text


def _column(name: str) -> str:
    return _EPS_COLUMN_OF.get(name, name)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return "'" + value  # a spreadsheet would run it as a formula; numbers are not str and stay numbers
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
