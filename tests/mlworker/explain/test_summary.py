import numpy as np
import pytest

from mlworker.explain.regions import attribution_shares, nerve_mask, ring_mask
from mlworker.explain.summary import SUMMARY_STATS, summarise_shares
from mlworker.stats import bootstrap_mean_ci


def _shares(nerve, ring, pointing="nerve", nerve_area=0.1, ring_area=0.15):
    """A shares dict as attribution_shares returns it, with chosen values."""
    return {
        "nerve": nerve,
        "ring": ring,
        "outside": 1.0 - nerve - ring,
        "nerve_area": nerve_area,
        "ring_area": ring_area,
        "outside_area": 1.0 - nerve_area - ring_area,
        "pointing": pointing,
        "positive_mass": 1.0,
        "reason": None,
    }


def _study(seed=0, n_hands=24, frames=(2, 6), copies=1):
    """Rows with a hand effect on the nerve share (frames of a hand agree), uneven frames per hand."""
    rng = np.random.default_rng(seed)
    rows = []
    for hand in range(n_hands):
        label = hand % 2
        base = 0.3 + 0.2 * label + rng.normal(0, 0.1)
        for _ in range(int(rng.integers(*frames))):
            nerve = float(np.clip(base + rng.normal(0, 0.01), 0.0, 0.8))
            pointing = "nerve" if rng.random() < 0.6 else "outside"
            for _ in range(copies):
                rows.append({"hand": hand, "label": label, "model": "m", "shares": _shares(nerve, 0.1, pointing)})
    return rows


def test_estimates_are_frame_means_and_cis_bracket_them():
    rows = _study()
    (summary,) = summarise_shares(rows, by=("model",), n_boot=400)
    nerve = [r["shares"]["nerve"] for r in rows]
    hits = [r["shares"]["pointing"] != "outside" for r in rows]
    assert summary["nerve"]["estimate"] == pytest.approx(np.mean(nerve))
    assert summary["pointing_hit"]["estimate"] == pytest.approx(np.mean(hits))
    assert summary["nerve_excess"]["estimate"] == pytest.approx(np.mean(nerve) - 0.1)
    assert summary["pointing_chance"]["estimate"] == pytest.approx(0.25)
    for stat in ("nerve", "outside", "nerve_excess", "pointing_hit"):
        assert summary[stat]["low"] < summary[stat]["estimate"] < summary[stat]["high"], stat
    assert (summary["n_frames"], summary["n_hands"], summary["n_measured"]) == (len(rows), 24, len(rows))
    assert (summary["n_hands_control"], summary["n_hands_cts"]) == (12, 12)
    assert summary["ci"] == {
        "kind": "bootstrap over hands, stratified by label", "level": 0.95, "n_boot": 400, "seed": 0
    }


def test_copies_of_a_hands_frames_do_not_narrow_the_interval():
    # A frame bootstrap would read ten copies as ten times the evidence; resampling hands does not.
    once = summarise_shares(_study(seed=2), by=("model",), n_boot=400)[0]["nerve"]
    tenfold = summarise_shares(_study(seed=2, copies=10), by=("model",), n_boot=400)[0]["nerve"]
    assert tenfold["high"] - tenfold["low"] == pytest.approx(once["high"] - once["low"], rel=1e-9)
    assert tenfold["estimate"] == pytest.approx(once["estimate"])


def test_interval_reflects_hands_not_frames():
    # Frames of a hand agree closely, so the evidence is ~24 hands, not ~150 frames: the interval is
    # about sqrt(frames per hand) times wider than a frame bootstrap of the same values.
    rows = _study(seed=3, frames=(4, 10))
    summary = summarise_shares(rows, by=("model",), n_boot=800)[0]["nerve"]
    values = np.array([r["shares"]["nerve"] for r in rows])
    labels = np.array([r["label"] for r in rows])
    frames = bootstrap_mean_ci(values, strata=labels, n_boot=800)
    assert summary["high"] - summary["low"] > 1.8 * (frames["high"][0] - frames["low"][0])


def test_frames_without_outline_or_positive_mass_are_counted_not_measured():
    rows = _study(seed=1, n_hands=8)
    measured = [r["shares"]["nerve"] for r in rows]
    rows += [{"hand": 0, "label": 0, "model": "m", "shares": None} for _ in range(3)]
    no_mass = _shares(0.0, 0.0) | {"nerve": None, "ring": None, "outside": None, "pointing": None, "reason": "none"}
    rows += [{"hand": 1, "label": 1, "model": "m", "shares": no_mass}]
    rows += [{"hand": 99, "label": 1, "model": "m", "shares": None}]  # a hand with no outline at all
    (summary,) = summarise_shares(rows, by=("model",), n_boot=200)
    assert summary["n_without_outline"] == 4 and summary["n_without_positive_mass"] == 1
    assert summary["n_measured"] == len(measured) and summary["n_frames"] == len(measured) + 5
    assert summary["n_hands"] == 9
    assert summary["nerve"]["estimate"] == pytest.approx(np.mean(measured))


def test_group_without_any_measured_frame_reports_counts_only():
    rows = [{"hand": h, "label": h % 2, "model": "m", "shares": None} for h in range(4)]
    (summary,) = summarise_shares(rows, by=("model",), n_boot=50)
    assert summary["n_without_outline"] == 4 and summary["n_measured"] == 0
    assert all(summary[stat] == {"estimate": None, "low": None, "high": None} for stat in SUMMARY_STATS)


def test_groups_split_by_keys_and_sort_with_missing_values_last():
    nerve = nerve_mask([[4, 4], [12, 4], [12, 12], [4, 12]], 16)
    ring = ring_mask(nerve, 1.0)
    inside = attribution_shares(np.where(nerve, 1.0, 0.0), nerve, ring)
    uniform = attribution_shares(np.ones((16, 16)), nerve, ring)
    rows = []
    for hand in range(6):
        for method, shares in (("occlusion", inside), ("lime", uniform)):
            stage = None if hand % 2 == 0 else hand // 2
            rows.append({"hand": hand, "label": hand % 2, "method": method, "stage": stage, "shares": shares})
    summaries = summarise_shares(rows, by=("method", "stage"), n_boot=100)
    keys = [(s["method"], s["stage"]) for s in summaries]
    assert keys == [("lime", 0), ("lime", 1), ("lime", 2), ("lime", None),
                    ("occlusion", 0), ("occlusion", 1), ("occlusion", 2), ("occlusion", None)]
    occlusion = summaries[-1]
    assert occlusion["n_frames"] == 3 and occlusion["nerve"] == {"estimate": 1.0, "low": 1.0, "high": 1.0}
    assert occlusion["pointing_hit"]["estimate"] == 1.0
    lime = summaries[3]
    assert lime["nerve"]["estimate"] == pytest.approx(lime["nerve_area"]["estimate"])
    assert lime["pointing_hit"]["estimate"] == 0.0  # a flat map's plateau lies mostly outside


@pytest.mark.parametrize(
    "row, message",
    [
        ({"label": 0, "shares": None, "model": "m"}, "lacks hand"),
        ({"hand": 1, "label": 0, "shares": None}, "lacks model"),
        ({"hand": 1, "label": 2, "shares": None, "model": "m"}, "label 2"),
        ({"hand": None, "label": 0, "shares": None, "model": "m"}, "no hand id"),
        ({"hand": 1, "label": 0, "shares": {"nerve": 1.0}, "model": "m"}, "attribution_shares"),
    ],
)
def test_bad_rows_are_refused(row, message):
    with pytest.raises(ValueError, match=message):
        summarise_shares([row], by=("model",))


def test_a_hand_with_two_labels_is_refused():
    rows = [{"hand": 1, "label": label, "model": "m", "shares": _shares(0.5, 0.1)} for label in (0, 1)]
    with pytest.raises(ValueError, match="hand 1 has frames labelled both 0 and 1"):
        summarise_shares(rows, by=("model",), n_boot=10)
