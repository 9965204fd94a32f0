import csv
import datetime as dt
import io

import pytest

from studyapp.cohort import csvio, services
from studyapp.cohort.models import CsaMeasurement, EpsExam, Hand, Participant
from tests.factories import UserFactory, make_hand

pytestmark = pytest.mark.django_db

HEADER = ("study_code,sex,age,recruitment,enrolled_on,side,exclusion_reason,exclusion_detail,eps_exam_date,dml_ms,"
          "sncv_m_s,motor_response_absent,sensory_response_absent,csa_mm2,csa_measured_on\n")
GOOD = HEADER + (
    "P-01,female,55,patient,2026-01-05,right,,,2026-01-20,5.3,34.0,no,no,15.2,2026-01-20\n"
    "P-01,female,55,patient,2026-01-05,left,,,2026-01-20,4.6,44.0,no,no,11.0,2026-01-20\n"
    "H-01,male,33,healthy_volunteer,2026-01-06,right,,,,,,,,7.9,2026-01-21\n"
    "P-02,female,70,patient,2026-01-07,right,,,2026-01-22,,,yes,yes,,\n"
    "P-03,male,62,patient,2026-01-08,right,prior_carpal_tunnel_release,,,,,,,,\n"
)


def counts():
    return (Participant.objects.count(), Hand.objects.count(), EpsExam.objects.count(),
            CsaMeasurement.objects.count())


def test_good_file_imports_everything_and_stages():
    result = csvio.import_cohort(GOOD)
    assert result.ok, result.errors
    assert (result.participants, result.hands, result.eps_exams, result.csa_measurements) == (4, 5, 3, 3)
    groups = {str(h): (h.stage, h.group) for h in Hand.objects.all()}
    assert groups == {"P-01 right": (3, "cts"), "P-01 left": (2, "cts"), "H-01 right": (None, "control"),
                      "P-02 right": (5, "cts"), "P-03 right": (None, "excluded")}


@pytest.mark.parametrize("bad_row, message", [
    ("P-09,female,55,patient,,right,,,2026-01-20,55,34.0,no,no,,\n", "dml_ms"),
    ("P-09,female,55,patient,,right,,,2026-01-20,5.0,34.0,no,no,-4,\n", "csa_mm2"),
    ("P-09,female,abc,patient,,right,,,,,,,,,\n", "age: 'abc' is not a number"),
    ("P-09,female,55,patient,,middle,,,,,,,,,\n", "side"),
    ("P-09,female,55,patient,,right,,,20/01/2026,5,30,no,no,,\n", "not a date"),
    ("P-09,female,55,patient,,right,,,,5,30,no,no,,\n", "eps_exam_date: is required"),
    ("P-09,female,55,patient,,right,,,2026-01-20,,,no,no,,\n", "an exam with only a date has no finding"),
    ("P 09,female,55,patient,,right,,,,,,,,,\n", "study_code: Use only letters, digits, '-' or '_'"),
    ("P-09,female,12,patient,,right,,,,,,,,,\n", "age: Participants are adults"),
    ("P-01,male,55,patient,,left,,,,,,,,,\n", "sex of P-01 differ"),
    ("P-01,female,55,patient,,right,,,,,,,,,\n", "already on line 2"),
    ("P-09,female,55,patient,,right,other,,,,,,,,\n", "Describe the reason"),
    ("P-09,female,55,patient,,right,,,2026-01-20,5,30,maybe,no,,\n", "not yes/no"),
])
def test_one_bad_row_imports_nothing(bad_row, message):
    content = HEADER + "P-01,female,55,patient,2026-01-05,right,,,2026-01-20,5.3,34.0,no,no,15.2,2026-01-20\n" + bad_row
    result = csvio.import_cohort(content)
    assert not result.ok
    assert any(e.startswith("Line 3:") and message in e for e in result.errors), result.errors
    assert counts() == (0, 0, 0, 0)


def test_every_bad_row_is_reported():
    content = HEADER + "A,female,55,patient,,right,,,,,,,,,\nB,female,x,patient,,right,,,,,,,,,\nC,female,y,patient,,right,,,,,,,,,\n"
    result = csvio.import_cohort(content)
    assert [e.split(":")[0] for e in result.errors] == ["Line 3", "Line 4"]
    assert counts() == (0, 0, 0, 0)


@pytest.mark.parametrize("content, message", [
    ("", "empty"),
    (b"\xff\xfe\x00garbage", "Line 1: the file is not UTF-8 text (byte 0xff)"),
    (HEADER.encode() + "P-01,female,55,patient,,right,,,,,,,,,\n".encode("cp1252")
     + "P-02,female,55,patient,,right,,,,,,,,,Müller\n".encode("cp1252"), "Line 3: the file is not UTF-8 text"),
    ("study_code,side\nX,left\n", "Line 1: missing column(s): sex, age, recruitment"),
    (HEADER.strip() + ",colour\n", "Line 1: unknown column(s): colour"),
    (HEADER.strip() + ",side\n", "Line 1: column(s) given twice: side"),
    (HEADER + "P-01,female,55,patient,,right,,,,,,,,,\nP-02,female,55,patient,,right\n",
     "Line 3: 6 cells where the header has 15"),
    (HEADER + "P-01,female,55,patient,,right,,,,,,,,,\nP-02,female,55,patient,,right,other,a\0b,,,,,,,\n",
     "Line 3: a cell holds a NUL character"),
])
def test_malformed_files_are_refused(content, message):
    result = csvio.import_cohort(content)
    assert not result.ok and message in result.errors[0]
    assert counts() == (0, 0, 0, 0)


def test_existing_hand_in_the_database_is_refused():
    assert csvio.import_cohort(GOOD).ok
    result = csvio.import_cohort(GOOD)
    assert not result.ok and "already enrolled" in result.errors[0]
    assert counts() == (4, 5, 3, 3)


def test_export_round_trips_with_derived_columns():
    assert csvio.import_cohort(GOOD).ok
    exported = csvio.export_cohort()
    assert exported.headers == csvio.EXPORT_COLUMNS
    rows = {(r["study_code"], r["side"]): r for r in exported.dict}
    assert rows[("P-01", "right")]["stage"] == "3" and rows[("P-01", "right")]["group"] == "cts"
    assert rows[("P-02", "right")]["motor_response_absent"] == "yes"
    text = exported.export("csv")
    for model in (CsaMeasurement, EpsExam, Hand, Participant):
        model.objects.all().delete()
    result = csvio.import_cohort(text)
    assert result.ok, result.errors
    assert counts() == (4, 5, 3, 3)
    assert csvio.export_cohort().dict == exported.dict


def test_import_and_export_in_the_ui(client_for):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = client_for("coordinator")
    bad = SimpleUploadedFile("c.csv", (HEADER + "X,female,55,patient,,right,,,,99,30,no,no,,\n").encode())
    response = client.post("/cohort/import/", {"file": bad})
    assert response.status_code == 400 and "Nothing was imported" in response.content.decode()
    response = client.post("/cohort/import/", {"file": SimpleUploadedFile("c.csv", GOOD.encode())})
    assert response.status_code == 302
    export = client.get("/cohort/export.csv")
    assert export["Content-Type"] == "text/csv" and b"P-01" in export.content


def test_old_files_without_provenance_import_as_scanner_values_by_the_importer(users):
    assert csvio.import_cohort(GOOD, history_user=users["coordinator"]).ok
    provenance = set(CsaMeasurement.objects.values_list("method", "site", "measured_by__username"))
    assert provenance == {("manual", "carpal_tunnel_inlet", "coord")}


def csa_rows():
    return sorted(CsaMeasurement.objects.values_list(
        "hand__participant__study_code", "hand__side", "csa_mm2", "site", "method", "measured_by__username",
        "measured_on"), key=str)


def test_round_trip_keeps_every_csa_value_and_its_provenance(users):
    """Export → wipe → import → export: the same CSV, and the same rows value by value."""
    coord, pi = users["coordinator"], users["pi"]
    anna, ben = UserFactory(username="anna", role="annotator"), UserFactory(username="ben", role="annotator")
    p01_right = make_hand(study_code="P-01", side="right", enrolled_on=dt.date(2026, 1, 5),
                          eps={"dml_ms": 5.3, "sncv_m_s": 34.0, "exam_date": dt.date(2026, 1, 20)})
    p01_left = services.hand_create(participant=p01_right.participant, side="left")
    services.eps_exam_create(hand=p01_left, exam_date=dt.date(2026, 1, 20), dml_ms=4.6, sncv_m_s=44.0)
    h01 = make_hand(study_code="H-01", recruitment="healthy_volunteer", sex="male", age=33)
    p02 = make_hand(study_code="P-02", eps={"motor_response_absent": True, "sensory_response_absent": True})
    make_hand(study_code="P-03", exclusion_reason="other")  # no EPS, no CSA, detail typed
    csa = services.csa_measurement_create
    day = dt.date(2026, 1, 20)
    csa(hand=p01_right, csa_mm2=15.2, measured_on=day, measured_by=coord)
    csa(hand=p01_right, csa_mm2=14.137, measured_on=day + dt.timedelta(2), measured_by=anna, method="outline")
    csa(hand=p01_right, csa_mm2=13.9, measured_on=day + dt.timedelta(2), measured_by=ben, method="outline")
    csa(hand=p01_right, csa_mm2=9.0, measured_on=day, measured_by=coord, site="forearm")
    csa(hand=p01_right, csa_mm2=11.5, measured_on=day, measured_by=pi, site="carpal_tunnel_outlet")
    csa(hand=h01, csa_mm2=7.9, measured_on=day, measured_by=pi)
    csa(hand=p02, csa_mm2=21.4, measured_on=day, measured_by=anna, method="outline")
    hands_before = sorted(Hand.objects.values_list("participant__study_code", "side", "stage", "group",
                                                   "exclusion_reason", "exclusion_detail"))
    exams_before = sorted(EpsExam.objects.values_list("hand__participant__study_code", "hand__side", "exam_date",
                                                      "dml_ms", "sncv_m_s", "motor_response_absent",
                                                      "sensory_response_absent"))
    csa_before = csa_rows()

    exported = csvio.export_cohort().export("csv")
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert len(rows) == 5 + 1 + 1 + 1 + 1  # a row per measurement, one per hand without any
    p01 = [r for r in rows if (r["study_code"], r["side"]) == ("P-01", "right")]
    assert [(r["csa_mm2"], r["csa_method"], r["csa_rater"]) for r in p01 if r["csa_site"] == "carpal_tunnel_inlet"] \
        == [("15.2", "manual", "coord"), ("14.137", "outline", "anna"), ("13.9", "outline", "ben")]
    assert len({tuple(r[c] for c in csvio.PARTICIPANT_COLUMNS + csvio.HAND_COLUMNS + csvio.EPS_COLUMNS)
                for r in p01}) == 1  # the hand and EPS columns repeat identically
    assert [r["csa_mm2"] for r in rows if r["study_code"] == "P-03"] == [""]

    for model in (CsaMeasurement, EpsExam, Hand, Participant):
        model.objects.all().delete()
    result = csvio.import_cohort(exported, history_user=coord)
    assert result.ok, result.errors
    assert (result.participants, result.hands, result.eps_exams, result.csa_measurements) == (4, 5, 3, 7)

    assert csvio.export_cohort().export("csv") == exported
    assert csa_rows() == csa_before
    assert sorted(Hand.objects.values_list("participant__study_code", "side", "stage", "group", "exclusion_reason",
                                           "exclusion_detail")) == hands_before
    assert sorted(EpsExam.objects.values_list("hand__participant__study_code", "hand__side", "exam_date", "dml_ms",
                                              "sncv_m_s", "motor_response_absent",
                                              "sensory_response_absent")) == exams_before


FULL = ",".join(csvio.IMPORT_COLUMNS) + "\n"
P01 = "P-01,female,55,patient,2026-01-05,right,,,2026-01-20,5.3,34.0,no,no,"


@pytest.mark.parametrize("csa, message", [
    ("14.1,carpal_tunnel_inlet,outline,,2026-01-22", "csa_rater: is required for a traced outline"),
    ("14.1,carpal_tunnel_inlet,outline,nobody-here,2026-01-22", "csa_rater: no user 'nobody-here'"),
    ("14.1,carpal_tunnel_inlet,traced,annot,2026-01-22", "csa_method: Value 'traced' is not a valid choice"),
    ("14.1,wrist,manual,,2026-01-22", "csa_site: Value 'wrist' is not a valid choice"),
    (",carpal_tunnel_inlet,manual,annot,", "csa_mm2: is required when csa_site, csa_method, csa_rater are given"),
])
def test_bad_csa_provenance_is_refused_with_its_line(users, csa, message):
    result = csvio.import_cohort(FULL + P01 + "15.2,,,,2026-01-20\n" + P01 + csa + "\n")
    assert not result.ok
    assert len(result.errors) == 1 and result.errors[0].startswith("Line 3:") and message in result.errors[0], \
        result.errors
    assert counts() == (0, 0, 0, 0)


def test_rows_of_one_hand_must_repeat_its_hand_and_eps_values(users):
    content = (FULL + P01 + "15.2,,,,2026-01-20\n"
               + P01.replace("5.3", "5.4") + "14.1,,outline,annot,2026-01-22\n"
               + P01.replace(",,,2026-01-20", ",prior_wrist_surgery,,2026-01-20") + "14.0,,,,\n")
    result = csvio.import_cohort(content)
    assert [e.split(":")[0] for e in result.errors] == ["Line 3", "Line 4"]
    assert "dml_ms differ(s) from line 2, the first row of P-01 right" in result.errors[0]
    assert "exclusion_reason differ(s) from line 2" in result.errors[1]
    assert counts() == (0, 0, 0, 0)


def test_a_row_lists_every_bad_value_not_only_the_first():
    content = FULL + "P 1,female,abc,patient,2026-13-01,middle,,,2026-01-20,55,-3,maybe,no,-4,,,,\n"
    result = csvio.import_cohort(content)
    assert len(result.errors) == 1
    error = result.errors[0]
    for fragment in ("Line 2:", "study_code: Use only letters", "age: 'abc' is not a number",
                     "enrolled_on: '2026-13-01' is not a date", "side: Value 'middle' is not a valid choice",
                     "dml_ms: must be between 0 and 20", "sncv_m_s: must be between 0 and 100",
                     "motor_response_absent: 'maybe' is not yes/no", "csa_mm2: must be above 0"):
        assert fragment in error, error
    assert error.count("age:") == 1  # a value refused while reading is not refused again by the model


def test_duplicate_rows_and_codes_differing_in_case_are_refused_with_their_lines():
    row = "P-01,female,55,patient,2026-01-05,right,,,2026-01-20,5.3,34.0,no,no,15.2,2026-01-20\n"
    content = (HEADER + row + "P-01,female,55,patient,2026-01-05,left,,,,,,,,,\n" + row
               + "p-01,female,55,patient,,left,,,,,,,,,\n")
    result = csvio.import_cohort(content)
    assert result.errors == ["Line 4: repeats line 2 exactly; remove the copy",
                             "Line 5: study_code: 'p-01' differs only in letter case from P-01 on line 2; use the "
                             "same code"]
    assert counts() == (0, 0, 0, 0)
    make_hand(study_code="Q-7")
    result = csvio.import_cohort(HEADER + "q-7,female,55,patient,,left,,,,,,,,,\n")
    assert result.errors == ["Line 2: study_code: 'q-7' differs only in letter case from Q-7, already enrolled; "
                             "use the same code"]


def test_the_export_neutralises_formulas_but_keeps_numbers_and_reads_back(users):
    hand = make_hand(study_code="-X1", exclusion_reason="other")
    services.hand_update(hand=hand, exclusion_detail='=HYPERLINK("http://evil","click")')
    services.eps_exam_create(hand=hand, exam_date=dt.date(2026, 2, 1), dml_ms=4.5, sncv_m_s=45.0)
    services.csa_measurement_create(hand=hand, csa_mm2=12.5, measured_by=users["coordinator"])
    text = csvio.export_cohort().export("csv")
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["study_code"] == "'-X1"
    assert row["exclusion_detail"] == "'=HYPERLINK(\"http://evil\",\"click\")"
    assert (row["dml_ms"], row["csa_mm2"]) == ("4.5", "12.5")
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row.values())
    for model in (CsaMeasurement, EpsExam, Hand, Participant):
        model.objects.all().delete()
    result = csvio.import_cohort(text, history_user=users["coordinator"])
    assert result.ok, result.errors
    again = Hand.objects.get()
    assert (again.participant.study_code, again.exclusion_detail) == ("-X1", '=HYPERLINK("http://evil","click")')


def test_a_bulk_import_writes_audit_history_and_the_staging_the_services_give(users):
    result = csvio.import_cohort(GOOD, history_user=users["coordinator"])
    assert result.ok, result.errors
    for model in (Participant, Hand, EpsExam, CsaMeasurement):
        rows = model.history.all()
        assert rows.count() == model.objects.count() > 0
        assert {(r.history_type, r.history_user_id) for r in rows} == {("+", users["coordinator"].pk)}
    for hand in Hand.objects.all():
        staged = (hand.stage, hand.group, hand.staging_reason)
        services.hand_restage(hand=hand)
        hand.refresh_from_db()
        assert (hand.stage, hand.group, hand.staging_reason) == staged
        assert hand.history.first().group == hand.group


def test_a_code_taken_while_the_file_was_checked_imports_nothing(monkeypatch):
    original = csvio._Importer.write

    def enrolled_meanwhile(importer):
        services.participant_create(study_code="P-02", sex="female", age=70, recruitment="patient")
        original(importer)

    monkeypatch.setattr(csvio._Importer, "write", enrolled_meanwhile)
    result = csvio.import_cohort(GOOD)
    assert result.errors and result.errors[0].startswith("Nothing was imported:")
    assert "already exists" in result.errors[0]
    assert counts() == (0, 0, 0, 0)
