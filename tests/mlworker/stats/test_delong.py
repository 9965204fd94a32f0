import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from mlworker.stats import delong_auc_covariance, delong_ci, delong_test
from mlworker.stats.delong import ZERO_SE_NOTE


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


def test_zero_standard_error_is_said_not_turned_into_p_zero():
    y, scores = _three_models()
    same = delong_test(y, scores[1], scores[1].copy())
    assert (same["difference"], same["z"], same["p_value"]) == (0.0, None, None)
    assert same["note"] == ZERO_SE_NOTE
    # Both perfectly separating, with different AUC impossible; one perfect, the other constant: se 0, diff 0.5.
    separated = delong_test([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], [0.5, 0.5, 0.5, 0.5])
    assert separated["difference"] == 0.5 and separated["se"] == 0.0
    assert separated["p_value"] is None and separated["z"] is None and "undefined" in separated["note"]


def test_difference_ci_is_wald_interval_of_the_difference():
    y, scores = _three_models()
    t = delong_test(y, scores[0], scores[1], level=0.9)
    half = norm.ppf(0.95) * t["se"]
    assert t["difference_ci"] == pytest.approx([t["difference"] - half, t["difference"] + half])
    assert "note" not in t and t["method"] == "DeLong"


def _clustered_slow(y, scores, clusters):
    """Obuchowski (1997) written out cluster by cluster from the O(m*n) structural components."""
    y, clusters = np.asarray(y), np.asarray(clusters)
    scores = np.atleast_2d(np.asarray(scores, float))
    x, z = scores[:, y == 1], scores[:, y == 0]
    psi = (x[:, :, None] > z[:, None, :]) + 0.5 * (x[:, :, None] == z[:, None, :])
    aucs = psi.mean(axis=(1, 2))
    v10, v01 = psi.mean(axis=2), psi.mean(axis=1)
    cpos, cneg = clusters[y == 1], clusters[y == 0]
    ids = np.unique(clusters)
    big_n, big_m = (y == 1).sum(), (y == 0).sum()
    d10 = np.array([[v10[j, cpos == c].sum() - (cpos == c).sum() * aucs[j] for c in ids] for j in range(len(aucs))])
    d01 = np.array([[v01[j, cneg == c].sum() - (cneg == c).sum() * aucs[j] for c in ids] for j in range(len(aucs))])
    i10, i01, i = len(set(cpos)), len(set(cneg)), len(ids)
    s10 = i10 / ((i10 - 1) * big_n) * d10 @ d10.T
    s01 = i01 / ((i01 - 1) * big_m) * d01 @ d01.T
    s11 = i / (i - 1) * d10 @ d01.T
    return aucs, s10 / big_n + s01 / big_m + (s11 + s11.T) / (big_n * big_m)


def test_clustered_covariance_with_one_case_per_cluster_is_delong():
    y, scores = _three_models()
    aucs, cov = delong_auc_covariance(y, scores)
    c_aucs, c_cov = delong_auc_covariance(y, scores, clusters=np.arange(y.size))
    np.testing.assert_allclose(c_aucs, aucs, rtol=0, atol=1e-15)
    np.testing.assert_allclose(c_cov, cov, rtol=1e-12, atol=1e-16)


def test_clustered_covariance_matches_the_cluster_by_cluster_formula():
    rng = np.random.default_rng(7)
    clusters = np.repeat(np.arange(30), rng.integers(1, 6, 30))
    y = (rng.random(clusters.size) < 0.5).astype(int)  # mixed clusters too, so S11 is not zero
    scores = np.vstack([y + rng.normal(0, 1, y.size), np.round(0.5 * y + rng.normal(0, 1, y.size), 1)])
    aucs, cov = delong_auc_covariance(y, scores, clusters=clusters)
    slow_aucs, slow_cov = _clustered_slow(y, scores, clusters)
    np.testing.assert_allclose(aucs, slow_aucs, atol=1e-14)
    np.testing.assert_allclose(cov, slow_cov, rtol=1e-10)


def test_copies_of_each_case_leave_the_clustered_test_unchanged():
    # The measurement: copying each of 60 cases 5x leaves the AUC alone but DeLong's p-value
    # collapses (0.081 -> 0.00008). Clustered by case, the copies add no information.
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1], 30)
    a = y * 0.9 + rng.normal(0, 1, 60)
    b = y * 0.4 + rng.normal(0, 1, 60)
    original = delong_test(y, a, b)
    copies = np.repeat(np.arange(60), 5)
    naive = delong_test(y[copies], a[copies], b[copies])
    clustered = delong_test(y[copies], a[copies], b[copies], clusters=copies)
    assert naive["difference"] == pytest.approx(original["difference"])
    assert naive["p_value"] < original["p_value"] / 5  # the independence assumption over-states evidence
    assert clustered["se"] == pytest.approx(original["se"], rel=1e-12)
    assert clustered["p_value"] == pytest.approx(original["p_value"], rel=1e-9)
    assert clustered["method"] == "Obuchowski clustered"
    low, high = delong_ci(y[copies], a[copies], clusters=copies)
    assert (low, high) == pytest.approx(delong_ci(y, a), rel=1e-12)


def test_clustered_se_agrees_with_the_cluster_bootstrap():
    # Simulated hands with a shared hand effect: frames within a hand are correlated.
    rng = np.random.default_rng(11)
    n_hands, frames = 40, 25
    hand_y = np.repeat([0, 1], n_hands // 2)
    hand_effect = rng.normal(0, 1, n_hands) + 0.8 * hand_y
    clusters = np.repeat(np.arange(n_hands), frames)
    y = hand_y[clusters]
    score = hand_effect[clusters] + rng.normal(0, 0.7, clusters.size)
    aucs, cov = delong_auc_covariance(y, score, clusters=clusters)
    boot = []
    for _ in range(600):
        hands = np.concatenate([rng.choice(np.flatnonzero(hand_y == g), n_hands // 2) for g in (0, 1)])
        idx = np.concatenate([np.flatnonzero(clusters == h) for h in hands])
        boot.append(roc_auc_score(y[idx], score[idx]))
    naive_se = np.sqrt(delong_auc_covariance(y, score)[1][0, 0])
    assert np.sqrt(cov[0, 0]) == pytest.approx(np.std(boot), rel=0.2)
    assert naive_se < 0.6 * np.sqrt(cov[0, 0])  # frames as if independent: far too small


def test_clustered_needs_two_clusters_per_class():
    with pytest.raises(ValueError, match="at least 2 clusters"):
        delong_auc_covariance([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], clusters=[1, 1, 2, 3])
    with pytest.raises(ValueError, match="one id per case"):
        delong_auc_covariance([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], clusters=[1, 2, 3])


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
