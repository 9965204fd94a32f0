"""The CSA baseline and the CSA comparison between groups read the CSA method the study settings name."""

import datetime as dt

import pytest

from studyapp.cohort import services as cohort_services
from studyapp.experiments import services
from studyapp.protocol.models import StudySettings
from tests.factories import make_hand

pytestmark = pytest.mark.django_db

CONTROL = {"dml_ms": 3.5, "sncv_m_s": 50.0}
CTS = {"dml_ms": 5.5, "sncv_m_s": 35.0}


@pytest.fixture
def cohort(users):
    """Scanner CSA of two control and two CTS hands, and a later traced outline on each, far from the scanner's."""
    for i, (eps, manual, outline) in enumerate([(CONTROL, 8.0, 80.0), (CONTROL, 9.0, 81.0),
                                                (CTS, 14.0, 90.0), (CTS, 15.0, 91.0)]):
        hand = make_hand(study_code=f"B-{i}", eps=dict(eps))
        cohort_services.csa_measurement_create(hand=hand, csa_mm2=manual, measured_on=dt.date(2026, 2, 1))
        cohort_services.csa_measurement_create(hand=hand, csa_mm2=outline, measured_on=dt.date(2026, 3, 1),
                                               method="outline", measured_by=users["annotator"])


def test_an_outline_never_enters_the_manual_baseline(cohort):
    assert StudySettings.current().csa_baseline_method == "manual"
    groups = services._csa_groups()
    assert (groups["median_x"], groups["median_y"]) == (8.5, 14.5)


def test_the_setting_switches_the_baseline_to_traced_outlines(cohort):
    cohort_services.study_settings_update(csa_baseline_method="outline")
    groups = services._csa_groups()
    assert (groups["median_x"], groups["median_y"]) == (80.5, 90.5)
