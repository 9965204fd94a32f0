import pytest

from studyapp.cohort import csvio
from studyapp.cohort.models import CsaMeasurement, EpsExam, Hand, Participant

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
    ("P-09,female,55,patient,,right,,,,5,30,no,no,,\n", "eps_exam_date is required"),
    ("P-01,male,55,patient,,left,,,,,,,,,\n", "sex differ"),
    ("P-01,female,55,patient,,right,,,,,,,,,\n", "already enrolled"),
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
    (b"\xff\xfe\x00garbage", "UTF-8"),
    ("study_code,side\nX,left\n", "Missing column"),
    (HEADER.strip() + ",colour\n", "Unknown column"),
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
