"""The prospective dashboard: counts, exclusions with reasons, accrued statistics beside the retrospective ones."""

import pytest

from studyapp.cohort import services as cohort_services
from studyapp.prospective import selectors
from tests.studyapp.prospective.conftest import EPS_CONTROL, EPS_CTS, enter_eps, pending_hand, store

pytestmark = pytest.mark.django_db


@pytest.fixture
def accrued(frozen, tmp_path):
    """Two CTS and two control hands scored, one sealed, one left out by the ordering rule, one never predicted."""
    for code, probability, eps in (("C1", 0.9, EPS_CTS), ("C2", 0.2, EPS_CTS), ("N1", 0.1, EPS_CONTROL),
                                   ("N2", 0.3, EPS_CONTROL)):
        hand = pending_hand(tmp_path, code=code)
        store(frozen, hand, probability=probability)
        enter_eps(hand, eps)
    store(frozen, pending_hand(tmp_path, code="SEALED"), probability=0.7)
    late = pending_hand(tmp_path, code="LATE")
    cohort_services.eps_exam_delete(exam=enter_eps(late, EPS_CTS))
    store(frozen, late, probability=0.8)
    enter_eps(late, EPS_CTS)
    enter_eps(pending_hand(tmp_path, code="UNPRED", annotated=False), EPS_CTS)
    return frozen


def test_counts_and_exclusions_with_reasons(accrued):
    dashboard = selectors.prospective_dashboard(model=accrued, target_width=0.2)
    assert (dashboard["n_predicted"], dashboard["n_sealed"], dashboard["n_scored"], dashboard["n_included"]) == \
        (6, 1, 5, 4)
    exclusions = dashboard["exclusions"]
    assert set(exclusions) == {"eps_before_prediction", "eps_without_prediction"}
    assert exclusions["eps_before_prediction"]["hands"] == ["LATE right"]
    assert exclusions["eps_without_prediction"]["hands"] == ["UNPRED right"]


def test_included_cases_feed_the_statistics_in_accrual_order(accrued, monkeypatch):
    import mlworker.stats.prospective as stats

    seen = {}
    real = stats.prospective_summary

    def spy(y_true, y_prob, **kwargs):
        seen.update(y_true=list(y_true), y_prob=list(y_prob), **kwargs)
        return real(y_true, y_prob, **kwargs)

    monkeypatch.setattr(stats, "prospective_summary", spy)
    dashboard = selectors.prospective_dashboard(model=accrued, target_width=0.2)
    assert seen["y_true"] == [1, 1, 0, 0] and seen["y_prob"] == pytest.approx([0.9, 0.2, 0.1, 0.3])
    assert seen["threshold"] == accrued.threshold
    assert dashboard["summary"]["sensitivity"]["estimate"] == pytest.approx(
        sum(p >= accrued.threshold for p in (0.9, 0.2)) / 2)
    needed = dashboard["needed"]
    assert needed["still"] == max(0, needed["total"] - 4)
    assert len(dashboard["accrual"]) == 4
    retrospective = dashboard["retrospective"]
    hand = accrued.run.evaluation["hand"]
    assert retrospective["auc"]["estimate"] == hand["metrics"]["auc"] and retrospective["n"] == hand["n"]
    assert retrospective["sensitivity"]["estimate"] == hand["metrics"]["recall"] is not None
    assert retrospective["specificity"]["estimate"] == hand["metrics"]["specificity"] is not None


def test_the_api_and_the_page_answer_with_the_chosen_width(accrued, api_for, client, users):
    wide = api_for("pi").get("/api/prospective/dashboard/?target_width=0.4").json()
    narrow = api_for("pi").get("/api/prospective/dashboard/?target_width=0.1").json()
    assert narrow["needed"]["total"] > wide["needed"]["total"] and wide["n_included"] == 4
    assert wide["model"]["id"] == accrued.pk and wide["model"]["active"] is True
    bad = api_for("pi").get("/api/prospective/dashboard/?target_width=3")
    assert bad.status_code == 400 and "target_width" in bad.json()
    client.force_login(users["pi"])
    page = client.get("/prospective/?target_width=0.1")
    assert page.status_code == 200 and page.context["dashboard"]["needed"] == narrow["needed"] | {}
    assert b'id="cases-still"' in page.content and b'data-figure="figure-prospective-accrual"' in page.content
    assert client.get("/prospective/?target_width=abc").status_code == 400


def test_without_a_frozen_model_the_page_offers_the_freeze_and_the_api_says_why(api_for, client, users, db):
    client.force_login(users["pi"])
    page = client.get("/prospective/")
    assert page.status_code == 200 and b'id="no-model"' in page.content and b'id="freeze-form"' in page.content
    response = api_for("pi").get("/api/prospective/dashboard/")
    assert response.status_code == 400 and "model" in response.json()
