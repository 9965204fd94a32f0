import datetime as dt

import pytest

from studyapp.cohort import selectors, services
from tests.factories import make_hand

pytestmark = pytest.mark.django_db


def test_latest_inlet_csa_reads_only_the_named_method_at_the_inlet(users):
    hand, other = make_hand(), make_hand()
    day = dt.date(2026, 1, 20)
    csa = services.csa_measurement_create
    csa(hand=hand, csa_mm2=10.0, measured_on=day)
    csa(hand=hand, csa_mm2=11.0, measured_on=day + dt.timedelta(1))  # the latest scanner value
    csa(hand=hand, csa_mm2=30.0, measured_on=day + dt.timedelta(2), method="outline",
        measured_by=users["annotator"])
    csa(hand=hand, csa_mm2=40.0, measured_on=day + dt.timedelta(3), site="forearm")
    csa(hand=other, csa_mm2=25.0, measured_on=day, method="outline", measured_by=users["annotator"])
    ids = [hand.pk, other.pk]
    assert selectors.latest_inlet_csa(hand_ids=ids, method="manual") == {hand.pk: 11.0}
    assert selectors.latest_inlet_csa(hand_ids=ids, method="outline") == {hand.pk: 30.0, other.pk: 25.0}
    assert selectors.latest_inlet_csa(hand_ids=[other.pk], method="manual") == {}
