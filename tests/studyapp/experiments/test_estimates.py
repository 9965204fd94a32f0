"""The launch estimate's arithmetic (pure)."""

import pytest

from studyapp.experiments.estimates import Measured, duration, training_estimate


def test_reference_figure_at_224_px_is_the_readme_benchmark():
    estimate = training_estimate(model_name="mobilenetv2_100", crops=800, epochs=30, input_size=224, measured=None)
    assert estimate.seconds == pytest.approx(800 * 30 * 0.101)  # 101 ms per crop-epoch
    assert "reference" in estimate.source and "no run measured" in estimate.source


def test_reference_figure_scales_with_pixel_count():
    full = training_estimate(model_name="squeezenet1_1", crops=100, epochs=1, input_size=224, measured=None)
    half = training_estimate(model_name="squeezenet1_1", crops=100, epochs=1, input_size=112, measured=None)
    assert half.seconds == pytest.approx(full.seconds / 4) and "scaled from 224 to 112 px" in half.source


def test_measured_throughput_wins_and_is_named():
    measured = Measured(images_per_s=400.0, input_size=224, device="cuda", run_id=7)
    estimate = training_estimate(model_name="efficientnet_b0", crops=8000, epochs=30, input_size=224,
                                 measured=measured)
    assert estimate.seconds == 600.0 and estimate.source == "measured on cuda by run #7 at 224 px"


@pytest.mark.parametrize("seconds, text", [(None, "—"), (0.4, "0 s"), (45, "45 s"), (89, "89 s"), (600, "10 min"),
                                           (5340, "89 min"), (12000, "3 h 20 min")])
def test_duration_for_people(seconds, text):
    assert duration(seconds) == text
