"""Synthetic clinical values: EPS staging, manual CSA noise, demographics."""

import numpy as np
import pytest

from mlworker.phantom import sample_eps, sample_manual_csa, sample_participant


def _stage(eps: dict) -> int:
    """The study's staging rules, re-implemented independently of the sampler."""
    dml, sncv = eps["dml_ms"], eps["sncv_m_s"]
    if eps["motor_response_absent"] and eps["sensory_response_absent"]:
        assert dml is None and sncv is None
        return 5
    if eps["sensory_response_absent"]:
        assert sncv is None and dml is not None and dml >= 4.5
        return 4
    assert dml is not None and sncv is not None
    if dml < 4.5:
        assert sncv >= 40
        return 1
    return 2 if sncv >= 40 else 3


def test_control_hands_are_stage_1_with_typical_values():
    rng = np.random.default_rng(1)
    samples = [sample_eps("control", rng) for _ in range(300)]
    assert {_stage(s) for s in samples} == {1}
    dml = np.array([s["dml_ms"] for s in samples])
    sncv = np.array([s["sncv_m_s"] for s in samples])
    assert 3.0 < np.median(dml) < 4.2 and 45 < np.median(sncv) < 60
    assert dml.max() < 4.5 and sncv.min() >= 40


def test_cts_hands_are_stage_2_to_5_mostly_mild():
    rng = np.random.default_rng(2)
    samples = [sample_eps("cts", rng) for _ in range(600)]
    stages = np.array([_stage(s) for s in samples])
    counts = {k: int(np.sum(stages == k)) for k in range(1, 6)}
    assert counts[1] == 0 and all(counts[k] > 20 for k in (2, 3, 4, 5))
    assert counts[2] + counts[3] > 1.5 * (counts[4] + counts[5])
    for s in samples:
        if s["dml_ms"] is not None:
            assert 0 <= s["dml_ms"] <= 20 and round(s["dml_ms"], 2) == s["dml_ms"]
        if s["sncv_m_s"] is not None:
            assert 0 <= s["sncv_m_s"] <= 100


def test_eps_is_reproducible_and_rejects_unknown_groups():
    assert sample_eps("cts", np.random.default_rng(9)) == sample_eps("cts", np.random.default_rng(9))
    with pytest.raises(ValueError, match="group"):
        sample_eps("patient", np.random.default_rng(0))


def test_manual_csa_is_truth_plus_small_noise_to_one_decimal():
    rng = np.random.default_rng(3)
    truth = 11.37
    values = np.array([sample_manual_csa(truth, rng) for _ in range(800)])
    assert np.allclose(values * 10, np.round(values * 10))
    err = values - truth
    assert abs(err.mean()) < 0.1 and 0.5 <= err.std() <= 1.0
    with pytest.raises(ValueError):
        sample_manual_csa(0.0, rng)


def test_participants_cts_older_and_more_often_female():
    rng = np.random.default_rng(4)
    ctl = [sample_participant("control", rng) for _ in range(300)]
    cts = [sample_participant("cts", rng) for _ in range(300)]
    assert {p["recruitment"] for p in ctl} == {"healthy_volunteer"}
    assert {p["recruitment"] for p in cts} == {"patient"}
    assert all(p["sex"] in ("female", "male") and isinstance(p["age"], int) for p in ctl + cts)
    assert np.mean([p["age"] for p in cts]) > np.mean([p["age"] for p in ctl]) + 8
    fem = {name: np.mean([p["sex"] == "female" for p in grp]) for name, grp in (("ctl", ctl), ("cts", cts))}
    assert fem["cts"] > fem["ctl"] + 0.1
    assert all(18 <= p["age"] <= 90 for p in ctl + cts)
