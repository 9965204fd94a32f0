"""The plain rules: outcomes at the threshold, evenly spaced frames, and the carried outline's geometry."""

import numpy as np
import pytest

from studyapp.explanations import rules
from tests.factories import RATER_FORM


@pytest.mark.parametrize("label, probability, expected", [
    (1, 0.5, "TP"), (1, 0.49, "FN"), (0, 0.5, "FP"), (0, 0.2, "TN"), (1, 0.99, "TP"), (0, 0.0, "TN")])
def test_outcome_at_the_threshold_counts_equal_as_positive(label, probability, expected):
    assert rules.outcome(label, probability, 0.5) == expected


def test_outcome_follows_another_threshold():
    assert rules.outcome(1, 0.6, 0.7) == "FN" and rules.outcome(0, 0.75, 0.7) == "FP"


def test_evenly_spaced_keeps_first_and_last_and_all_when_not_fewer():
    items = list(range(100))
    picked = rules.evenly_spaced(items, 10)
    assert len(picked) == 10 and picked[0] == 0 and picked[-1] == 99
    assert np.all(np.diff(picked) >= 10)
    assert rules.evenly_spaced(items, None) == items and rules.evenly_spaced(items[:4], 10) == items[:4]
    assert rules.evenly_spaced(items, 1) == [0]


def test_carried_outline_moves_with_the_roi_centre():
    square = np.array([[10, 10], [20, 10], [20, 20], [10, 20]], float)
    moved = rules.carried_outline(square, source_box=[0, 0, 30, 30], target_box=[7, -3, 30, 30])
    assert np.allclose(moved, square + [7, -3])
    # boxes of another size (clamped at the border): the centre's shift, not the corner's
    moved = rules.carried_outline(square, source_box=[0, 0, 30, 30], target_box=[0, 0, 20, 30])
    assert np.allclose(moved, square + [-5, 0])
    # the shape is unchanged
    assert np.allclose(np.diff(moved, axis=0), np.diff(square, axis=0))


def test_nearest_traced_frame_ties_to_the_earlier_one():
    assert rules.nearest_traced(5, [0, 10]) == 0
    assert rules.nearest_traced(6, [0, 10]) == 10
    assert rules.nearest_traced(3, [3]) == 3
    assert rules.nearest_traced(3, []) is None


def test_mm_per_crop_pixel():
    assert rules.mm_per_crop_px([0, 0, 60, 60], spacing_col_mm=0.25, size=224) == pytest.approx(15 / 224)
    assert rules.mm_per_crop_px([0, 0, 60, 60], spacing_col_mm=None, size=224) is None


@pytest.mark.django_db
def test_the_pi_sets_frames_per_hand_and_the_ring_on_the_settings_page_and_it_is_audited(client_for):
    from studyapp.protocol.models import StudySettings

    defaults = StudySettings.current()
    assert (defaults.explain_frames_occlusion, defaults.explain_frames_lime, defaults.explain_frames_gradcam,
            defaults.perineural_ring_mm) == (None, 10, None, 1.0)
    pi = client_for("pi")
    response = pi.post("/cohort/settings/", {
        "dml_threshold_ms": "4.5", "sncv_threshold_m_s": "40", "frames_per_clip": "100", "crop_size_mm": "15",
        "csa_baseline_method": "manual", "explain_frames_occlusion": "", "explain_frames_lime": "5",
        "explain_frames_gradcam": "20", "perineural_ring_mm": "1.5", **RATER_FORM})
    assert response.status_code == 302
    current = StudySettings.current()
    assert (current.explain_frames_lime, current.explain_frames_gradcam, current.perineural_ring_mm) == (5, 20, 1.5)
    assert current.history.first().perineural_ring_mm == 1.5
    html = pi.get("/cohort/settings/").content.decode()
    assert "LIME: test frames per hand" in html and "all / 5 / 20" in html
    bad = pi.post("/cohort/settings/", {
        "dml_threshold_ms": "4.5", "sncv_threshold_m_s": "40", "frames_per_clip": "100", "crop_size_mm": "15",
        "csa_baseline_method": "manual", "explain_frames_lime": "0", "perineural_ring_mm": "50", **RATER_FORM})
    assert bad.status_code == 200 and StudySettings.current().perineural_ring_mm == 1.5


def test_the_web_side_of_explanations_imports_without_torch():
    """Views, API, URLs, services, selectors and the task module load no torch (the worker's code does)."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, django; django.setup(); assert 'torch' not in sys.modules; "
            "import studyapp.explanations.views, studyapp.explanations.api, studyapp.explanations.urls, "
            "studyapp.explanations.services, studyapp.explanations.selectors, studyapp.explanations.tasks, "
            "studyapp.explanations.serializers, studyapp.explanations.filters; "
            "print('torch' in sys.modules)")
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "studyapp.settings.test"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"
