import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from mlworker.stats import delong_auc_covariance, delong_ci, delong_test


def _slow_delong(y, scores):
    """Structural components of DeLong, DeLong & Clarke-Pearson (1988), O(m*n) per model."""
    y = np.asarray(y)
    scores = np.atleast_2d(np.asarray(scores, float))
    x = scores[:, y == 1]  # (k, m)
    z = scores[:, y == 0]  # (k, n)
    m, n = x.shape[1], z.shape[1]
    psi = (x[:, :, None] > z[:, None, :]) + 0.5 * (x[:, :, None] == z[:, None, :])  # (k, m, n)
    aucs = psi.mean(axis=(1, 2))
    v10 = psi.mean(axis=2)  # (k, m)
    v01 = psi.mean(axis=1)  # (k, n)
    s10 = (v10 - aucs[:, None]) @ (v10 - aucs[:, None]).T / (m - 1)
    s01 = (v01 - aucs[:, None]) @ (v01 - aucs[:, None]).T / (n - 1)
    return aucs, s10 / m + s01 / n


def _three_models(seed=4, n=240):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.45).astype(int)
    latent = rng.normal(0, 1, n)
    scores = np.vstack(
        [
            np.round(0.9 * y + latent + rng.normal(0, 0.7, n), 1),  # ties
            1.3 * y + latent + rng.normal(0, 0.5, n),
            0.4 * y + rng.normal(0, 1, n),
        ]
    )
    return y, scores


HAND_Y = np.array([1, 1, 0, 0])
HAND_A = np.array([0.8, 0.4, 0.6, 0.2])
HAND_B = np.array([0.5, 0.9, 0.5, 0.1])


def test_hand_worked_example():
    # A: psi = [[1, 1], [0, 1]] -> AUC 3/4, V10 = (1, .5), V01 = (.5, 1) -> var = .125/2 + .125/2.
    # B: psi = [[.5, 1], [1, 1]] -> AUC 7/8, V10 = (.75, 1), V01 = (.75, 1) -> var = .03125.
    # cov: S10 = -.0625, S01 = +.0625 -> 0. z = -.125 / sqrt(.15625) = -1 / sqrt(10).
    aucs, cov = delong_auc_covariance(HAND_Y, np.vstack([HAND_A, HAND_B]))
    np.testing.assert_allclose(aucs, [0.75, 0.875])
    np.testing.assert_allclose(cov, [[0.125, 0.0], [0.0, 0.03125]], atol=1e-15)
    t = delong_test(HAND_Y, HAND_A, HAND_B)
    assert t["difference"] == pytest.approx(-0.125)
    assert t["se"] == pytest.approx(np.sqrt(0.15625))
    assert t["z"] == pytest.approx(-1 / np.sqrt(10))
    assert t["p_value"] == pytest.approx(2 * norm.cdf(-1 / np.sqrt(10)))


def test_fast_matches_slow_structural_components():
    y, scores = _three_models()
    aucs, cov = delong_auc_covariance(y, scores)
    ref_aucs, ref_cov = _slow_delong(y, scores)
    np.testing.assert_allclose(aucs, ref_aucs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cov, ref_cov, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(aucs, [roc_auc_score(y, s) for s in scores], atol=1e-12)


def test_test_is_consistent_and_symmetric():
    y, scores = _three_models()
    ab = delong_test(y, scores[0], scores[1])
    ba = delong_test(y, scores[1], scores[0])
    _, cov = _slow_delong(y, scores[[0, 1]])
    se = np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    assert ab["se"] == pytest.approx(se)
    assert ab["z"] == pytest.approx(ab["difference"] / se)
    assert ab["p_value"] == pytest.approx(2 * norm.sf(abs(ab["z"])))
    assert ba["z"] == pytest.approx(-ab["z"]) and ba["p_value"] == pytest.approx(ab["p_value"])
    # Models sharing a latent term are correlated: pairing makes an AUC gap of ~0.08 significant.
    assert ab["p_value"] < 0.01


def test_identical_models_give_p_one():
    y, scores = _three_models()
    t = delong_test(y, scores[1], scores[1].copy())
    assert (t["difference"], t["z"], t["p_value"]) == (0.0, 0.0, 1.0)


def test_ci_is_wald_interval_clipped():
    y, scores = _three_models()
    aucs, cov = _slow_delong(y, scores[1])
    low, high = delong_ci(y, scores[1], level=0.9)
    half = norm.ppf(0.95) * np.sqrt(cov[0, 0])
    assert (low, high) == pytest.approx((aucs[0] - half, min(1.0, aucs[0] + half)))
    # Perfect separation: AUC 1 with zero variance -> (1, 1), never above 1.
    assert delong_ci([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == (1.0, 1.0)


@pytest.mark.parametrize(
    "y, scores, message",
    [
        ([0, 1, 1, 1], [0.1, 0.2, 0.3, 0.4], "at least 2 positives and 2 negatives"),
        ([0, 0, 1, 1], [[0.1, 0.2, 0.3]], "length mismatch"),
        ([0, 0, 1, 1], [0.1, 0.2, np.nan, 0.4], "NaN"),
        ([0, 0, 1, 1], np.zeros((2, 2, 4)), "k_models, n"),
    ],
)
def test_bad_input_refused(y, scores, message):
    with pytest.raises(ValueError, match=message):
        delong_auc_covariance(y, scores)
