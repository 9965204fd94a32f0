import numpy as np
import pytest
from sklearn.metrics import recall_score

from mlworker.stats import youden_threshold


def test_hand_example_and_tie_break_to_highest_threshold():
    y = [0, 0, 0, 1, 1, 1]
    csa = [1.0, 2.0, 3.0, 2.5, 4.0, 5.0]
    # J at >= 5: 1/3; >= 4: 2/3; >= 3: 1/3; >= 2.5: 2/3; >= 2: 1/3; >= 1: 0. Tie 4 vs 2.5 -> 4.
    r = youden_threshold(y, csa)
    assert r == pytest.approx({"threshold": 4.0, "j": 2 / 3, "sensitivity": 2 / 3, "specificity": 1.0})


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
    # Applying the chosen cut-off with ">=" reproduces the reported operating point.
    pred = csa >= r["threshold"]
    assert r["sensitivity"] == pytest.approx(recall_score(y, pred))
    assert r["specificity"] == pytest.approx(recall_score(y, pred, pos_label=0))
    assert r["threshold"] in set(csa.tolist())


def test_bad_input_refused():
    with pytest.raises(ValueError, match="only one class"):
        youden_threshold([1, 1], [3.0, 4.0])
    with pytest.raises(ValueError, match="NaN"):
        youden_threshold([0, 1], [3.0, float("nan")])
