import numpy as np
import pytest
from sklearn.metrics import recall_score

from mlworker.stats import youden_threshold


def test_hand_example_and_tie_break_to_highest_threshold():
    y = [0, 0, 0, 1, 1, 1]
    csa = [1.0, 2.0, 3.0, 2.5, 4.0, 5.0]
    # J at >= 5: 1/3; >= 4: 2/3; >= 3: 1/3; >= 2.5: 2/3; >= 2: 1/3; >= 1: 0. Tie 4 vs 2.5 -> 4, whose lower
    # neighbour is 3: the cut-off is the midpoint 3.5, as pROC reports it.
    r = youden_threshold(y, csa)
    assert r == pytest.approx({"threshold": 3.5, "observed_score": 4.0, "j": 2 / 3, "sensitivity": 2 / 3,
                               "specificity": 1.0})


def test_midpoint_does_not_depend_on_the_boundary_score():
    # Moving the boundary control hand from 3.0 to 3.9 moves the cut-off by half as much, and new hands
    # between the two training scores are classified by where they lie relative to the midpoint.
    y = [0, 0, 0, 1, 1, 1]
    assert youden_threshold(y, [1.0, 2.0, 3.0, 4.5, 5.0, 6.0])["threshold"] == pytest.approx(3.75)
    assert youden_threshold(y, [1.0, 2.0, 3.9, 4.5, 5.0, 6.0])["threshold"] == pytest.approx(4.2)


def test_lowest_score_best_has_no_lower_neighbour():
    r = youden_threshold([1, 0, 1, 0], [1.0, 2.0, 1.0, 3.0])  # an inverse score: calling every hand positive is best
    assert r["threshold"] == r["observed_score"]


def test_matches_brute_force_over_observed_scores():
    rng = np.random.default_rng(8)
    y = (rng.random(150) < 0.5).astype(int)
    csa = np.round(9 + 3 * y + rng.normal(0, 2.5, 150), 1)  # mm^2, with ties
    best = max(
        (
            recall_score(y, csa >= t) + recall_score(y, csa >= t, pos_label=0) - 1,
            t,
        )
        for t in np.unique(csa)
    )
    r = youden_threshold(y, csa)
    assert r["j"] == pytest.approx(best[0])
    # Applying the chosen cut-off with ">=" reproduces the reported operating point, and so does the
    # observed score it lies just below (no training score lies between them).
    for cut in (r["threshold"], r["observed_score"]):
        pred = csa >= cut
        assert r["sensitivity"] == pytest.approx(recall_score(y, pred))
        assert r["specificity"] == pytest.approx(recall_score(y, pred, pos_label=0))
    assert r["observed_score"] in set(csa.tolist())
    below = csa[csa < r["observed_score"]]
    assert r["threshold"] == pytest.approx((r["observed_score"] + below.max()) / 2)


def test_bad_input_refused():
    with pytest.raises(ValueError, match="only one class"):
        youden_threshold([1, 1], [3.0, 4.0])
    with pytest.raises(ValueError, match="NaN"):
        youden_threshold([0, 1], [3.0, float("nan")])
