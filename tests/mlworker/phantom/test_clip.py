"""The synthetic median-nerve phantom: determinism, geometry truth, group differences, motion."""


import cv2
import numpy as np
import pytest

from mlworker.phantom import (
    NerveParams,
    PhantomConfig,
    generate_clip,
    sample_nerve_params,
)

SMALL = PhantomConfig(width=160, height=120, n_frames=8, pixel_spacing_mm=0.25)


def _interior_mask(outline: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(outline * 16).astype(np.int32)], 1, shift=4)
    return cv2.erode(mask, np.ones((3, 3), np.uint8)) > 0


def test_same_seed_gives_identical_clip_and_other_seed_differs():
    a, b = generate_clip("cts", 11, SMALL), generate_clip("cts", 11, SMALL)
    assert np.array_equal(a.frames, b.frames)
    assert np.array_equal(a.centers, b.centers) and np.array_equal(a.csa_mm2, b.csa_mm2)
    assert all(np.array_equal(x, y) for x, y in zip(a.outlines, b.outlines))
    assert a.params == b.params
    c = generate_clip("cts", 12, SMALL)
    assert not np.array_equal(a.frames, c.frames)


def test_explicit_params_reproduce_the_seeded_hand():
    # Documented contract: child 0 of SeedSequence(seed) draws the hand.
    rng = np.random.default_rng(np.random.SeedSequence(5).spawn(1)[0])
    params = sample_nerve_params("control", rng)
    assert np.array_equal(generate_clip("control", 5, SMALL, params=params).frames,
                          generate_clip("control", 5, SMALL).frames)


def test_default_clip_shapes_and_dtypes():
    clip = generate_clip("control", 3)
    assert clip.frames.shape == (100, 240, 320) and clip.frames.dtype == np.uint8
    assert clip.pixel_spacing_mm == (0.125, 0.125) and clip.fps == 25.0
    assert len(clip.outlines) == 100
    assert all(o.shape == (64, 2) and o.dtype == np.float32 for o in clip.outlines)
    assert clip.centers.shape == (100, 2) and clip.csa_mm2.shape == (100,)
    assert clip.frames.std() > 20  # an image, not a blank


def test_csa_is_the_outline_polygon_area_and_centre_its_centroid():
    clip = generate_clip("cts", 21, SMALL)
    row, col = clip.pixel_spacing_mm
    for outline, center, csa in zip(clip.outlines, clip.centers, clip.csa_mm2):
        assert csa == pytest.approx(cv2.contourArea(outline) * row * col, rel=1e-5)
        m = cv2.moments(outline)
        assert np.hypot(m["m10"] / m["m00"] - center[0], m["m01"] / m["m00"] - center[1]) < 0.3
    # Deformation changes the area only slightly around the hand's nominal CSA.
    assert np.all(np.abs(clip.csa_mm2 / clip.params.csa_mm2 - 1) < 0.12)
    assert clip.csa_mm2.std() > 0


def test_roi_stays_in_frame_and_nerve_drifts_a_few_mm():
    config = PhantomConfig(n_frames=60)
    for group, seed in (("control", 1), ("cts", 2), ("cts", 3)):
        clip = generate_clip(group, seed, config)
        half = 7.5 / config.pixel_spacing_mm  # the 15 mm ROI around the nerve
        c = clip.centers
        assert c[:, 0].min() >= half and c[:, 0].max() <= config.width - 1 - half
        assert c[:, 1].min() >= half and c[:, 1].max() <= config.height - 1 - half
        assert all(np.abs(o - ctr).max() < half for o, ctr in zip(clip.outlines, c))
        path_mm = np.hypot(*(c[-1] - c[0])) * config.pixel_spacing_mm
        assert 1.0 < path_mm < 6.0


def test_field_too_small_for_the_roi_is_refused():
    with pytest.raises(ValueError, match="field of view"):
        generate_clip("control", 0, PhantomConfig(width=100, height=100, n_frames=3))


@pytest.mark.parametrize("kwargs, match", [
    ({"group": "healthy", "seed": 1}, "group"),
    ({"group": "cts", "seed": -1}, "seed"),
])
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_clip(config=SMALL, **kwargs)


def test_params_of_the_other_group_are_refused():
    params = sample_nerve_params("cts", np.random.default_rng(0))
    with pytest.raises(ValueError, match="group"):
        generate_clip("control", 0, SMALL, params=params)
    with pytest.raises(ValueError, match="csa_mm2"):
        NerveParams(group="cts", csa_mm2=55.0, flattening=2.0, echogenicity=0.3, fascicle_count=5,
                    epineurium_sharpness=0.5)


def test_group_distributions_differ_as_in_the_literature_but_overlap():
    rng = np.random.default_rng(2022)
    ctl = [sample_nerve_params("control", rng) for _ in range(200)]
    cts = [sample_nerve_params("cts", rng) for _ in range(200)]
    csa_c = np.array([p.csa_mm2 for p in ctl])
    csa_t = np.array([p.csa_mm2 for p in cts])
    assert csa_c.min() >= 4.0 and csa_t.max() <= 40.0
    assert abs(csa_c.mean() - 8.2) < 0.8 and abs(csa_c.std() - 2.4) < 0.6
    assert abs(csa_t.mean() - 14.7) < 1.5 and abs(csa_t.std() - 5.3) < 1.2
    # Overlap: a fifth of CTS hands are below the control upper quartile.
    assert np.mean(csa_t < np.percentile(csa_c, 75)) > 0.1
    for attr in ("flattening", "echogenicity", "fascicle_count", "epineurium_sharpness"):
        c = np.array([getattr(p, attr) for p in ctl], float)
        t = np.array([getattr(p, attr) for p in cts], float)
        assert t.mean() < c.mean(), attr
        assert np.mean(t > np.median(c)) > 0.1, f"{attr} alone separates the groups"
    # The major axis stays anatomically plausible for every hand.
    for p in ctl + cts:
        assert 2 * np.sqrt(p.csa_mm2 * p.flattening / np.pi) <= 12.0 + 1e-9


def test_cts_nerve_interior_is_darker_on_average():
    config = PhantomConfig(width=160, height=120, n_frames=1, pixel_spacing_mm=0.25)
    means = {}
    for group in ("control", "cts"):
        vals = []
        for seed in range(16):
            clip = generate_clip(group, 100 + seed, config)
            vals.append(clip.frames[0][_interior_mask(clip.outlines[0], clip.frames[0].shape)].mean())
        means[group] = np.array(vals)
    assert means["cts"].mean() < means["control"].mean() - 5
    assert means["cts"].max() > means["control"].min()  # overlapping, not trivially separable


def test_nerve_is_visible_against_its_surroundings():
    # The epineurium ring is brighter than the interior just inside it.
    clip = generate_clip("control", 8, PhantomConfig(n_frames=1))
    frame = clip.frames[0]
    inner = _interior_mask(clip.outlines[0], frame.shape)
    outline = np.zeros(frame.shape, np.uint8)
    cv2.polylines(outline, [np.round(clip.outlines[0]).astype(np.int32)], True, 1, 2)
    assert frame[outline > 0].mean() > frame[inner & (outline == 0)].mean() + 10


def test_speckle_decorrelates_but_anatomy_persists_between_frames():
    clip = generate_clip("control", 4, PhantomConfig(n_frames=20))
    f = clip.frames.astype(float)
    r_next = np.corrcoef(f[0].ravel(), f[1].ravel())[0, 1]
    r_far = np.corrcoef(f[0].ravel(), f[19].ravel())[0, 1]
    assert 0.5 < r_next < 0.99
    assert r_far < r_next
