"""Per-site intensity normalisation (pure numpy)."""

import numpy as np
import pytest

from mlworker.ml.normalise import normalise_by_site, site_statistics


def two_sites(rng, n=40):
    """Site A: mid-grey with spread 20; site B (external): brighter and flatter, as another scanner's gain."""
    a = np.clip(rng.normal(100, 20, (n, 1, 8, 8)), 0, 255).astype(np.uint8)
    b = np.clip(rng.normal(170, 8, (n, 1, 8, 8)), 0, 255).astype(np.uint8)
    images = np.concatenate([a, b])
    sites = ["A"] * n + ["B"] * n
    fitting = np.array([i < n * 3 // 4 for i in range(n)] + [False] * n)
    return images, sites, fitting


def test_each_site_is_mapped_onto_the_fitting_crops_statistics():
    images, sites, fitting = two_sites(np.random.default_rng(0))
    out, record = normalise_by_site(images, sites, fitting)
    assert out.dtype == np.uint8 and out.shape == images.shape
    reference = record["reference"]
    assert reference["mean"] == pytest.approx(images[fitting].mean())
    assert reference["sd"] == pytest.approx(images[fitting].std())
    external = out[40:].astype(float)
    # Before: the external site is 70 grey levels brighter and its spread less than half; after: as the reference.
    assert abs(images[40:].mean() - reference["mean"]) > 60
    assert external.mean() == pytest.approx(reference["mean"], abs=1.0)
    assert external.std() == pytest.approx(reference["sd"], rel=0.05)
    assert record["sites"]["B"]["from"] == "its own crops (no labels)" and record["sites"]["B"]["n"] == 40
    assert record["sites"]["A"]["from"] == "fitting crops" and record["sites"]["A"]["n"] == 30
    # The training site's fitting crops already have the reference statistics: left (nearly) as they were.
    assert np.abs(out[:40].astype(int) - images[:40].astype(int)).max() <= 1


def test_an_unseen_site_is_standardised_by_its_own_pixels_whatever_the_fitting_crops():
    images, sites, fitting = two_sites(np.random.default_rng(1))
    stats = site_statistics(images, sites, fitting)
    assert stats["sites"]["B"]["mean"] == pytest.approx(images[40:].mean())
    fewer = fitting.copy()
    fewer[:10] = False
    assert site_statistics(images, sites, fewer)["sites"]["B"] == stats["sites"]["B"]


def test_none_leaves_the_crops_and_bad_input_is_refused():
    images, sites, fitting = two_sites(np.random.default_rng(2), n=4)
    same, record = normalise_by_site(images, sites, fitting, method="none")
    assert same is images and record == {"method": "none"}
    with pytest.raises(ValueError, match="unknown"):
        normalise_by_site(images, sites, fitting, method="histogram")
    with pytest.raises(ValueError, match="No fitting crop"):
        normalise_by_site(images, sites, np.zeros(8, bool))
    with pytest.raises(ValueError, match="one entry per crop"):
        normalise_by_site(images, sites[:3], fitting)
    with pytest.raises(ValueError, match="uint8"):
        normalise_by_site(images.astype(np.float32), sites, fitting)
    constant = np.full((2, 1, 2, 2), 7, np.uint8)
    out, _ = normalise_by_site(constant, ["A", "B"], np.array([True, False]))
    assert (out == 7).all()


def test_new_crops_are_normalised_as_the_run_was_for_a_seen_site_and_by_their_own_pixels_otherwise():
    from mlworker.ml.normalise import normalise_like

    images, sites, fitting = two_sites(np.random.default_rng(3))
    out, record = normalise_by_site(images, sites, fitting)
    assert np.array_equal(normalise_like(images[40:45], record, site="B"), out[40:45])
    assert np.array_equal(normalise_like(images[:5], record, site="A"), out[:5])
    unseen = np.clip(images[40:] * 0.5, 0, 255).astype(np.uint8)
    moved = normalise_like(unseen, record, site="C").astype(float)
    assert moved.mean() == pytest.approx(record["reference"]["mean"], abs=1.0)
    assert normalise_like(images, {"method": "none"}, site="A") is images
