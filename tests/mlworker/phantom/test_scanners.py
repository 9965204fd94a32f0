"""Scanner profiles: the default is the phantom's own image, each setting moves the image statistics the
way a real scanner's would, and a two-site cohort shows a domain shift while its CTS signal survives."""

import hashlib
from dataclasses import replace

import cv2
import numpy as np
import pydicom
import pytest

from mlworker.phantom import (
    PHANTOM_SCANNER,
    SCANNER_PROFILES,
    SITE_A_LOGIQ,
    SITE_B_CX50,
    PhantomConfig,
    generate_clip,
    ground_truth,
    scanner_profile,
    write_dicom,
)

SMALL = PhantomConfig(width=160, height=120, n_frames=4, pixel_spacing_mm=0.25)
WIDE = PhantomConfig(n_frames=2)  # the default 0.125 mm pixels, where edges and speckle grain are resolved


def _frames(profile, group="control", seed=1, config=WIDE, **changes):
    return generate_clip(group, seed, config, profile=replace(profile, **changes)).frames.astype(np.float32)


def _interior_mask(outline, shape):
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(outline * 16).astype(np.int32)], 1, shift=4)
    return cv2.erode(mask, np.ones((3, 3), np.uint8)) > 0


def test_default_profile_reproduces_the_phantom_bit_for_bit():
    # sha256 of these frames computed on the phantom before scanner profiles existed: the demo, the tests and
    # the benchmarks rely on the default images staying exactly what they were.
    clip = generate_clip("cts", 11, SMALL)
    assert clip.profile is PHANTOM_SCANNER
    assert hashlib.sha256(clip.frames.tobytes()).hexdigest() == (
        "b4a37c7af2b1c703b4e0c0acaf26d196d2e5ea970ac1921637496e68593e389e")


def test_identity_alone_does_not_change_pixels_and_anatomy_is_the_same_through_every_scanner():
    renamed = replace(PHANTOM_SCANNER, name="other", manufacturer="Other", model_name="X", institution_name="Y")
    assert np.array_equal(generate_clip("control", 2, SMALL, profile=renamed).frames,
                          generate_clip("control", 2, SMALL).frames)
    a = generate_clip("cts", 2, SMALL, profile=SITE_A_LOGIQ)
    b = generate_clip("cts", 2, SMALL, profile=SITE_B_CX50)
    assert a.params == b.params  # one seed, one hand
    assert np.allclose(a.csa_mm2, b.csa_mm2, rtol=1e-5)  # the same nerve in mm2, whatever the pixel size
    assert not np.array_equal(a.frames, b.frames)


def test_depth_sets_square_pixels_over_the_frame_height():
    clip = generate_clip("control", 3, SMALL, profile=replace(PHANTOM_SCANNER, depth_mm=36.0))
    assert clip.pixel_spacing_mm == (0.3, 0.3) and clip.frames.shape == (4, 120, 160)
    assert np.all(np.abs(clip.csa_mm2 / clip.params.csa_mm2 - 1) < 0.12)


def test_gain_raises_the_mean_intensity():
    means = [_frames(PHANTOM_SCANNER, gain_db=g).mean() for g in (-6.0, 0.0, 6.0)]
    assert means[0] + 10 < means[1] < means[2] - 10


def test_wider_dynamic_range_flattens_the_histogram():
    # Spread as a contrast: the log ratio of the 90th to the 10th grey percentile (gain-independent).
    def spread(frames):
        p10, p90 = np.percentile(frames[frames > 0], [10, 90])
        return np.log(p90 / p10)

    spreads = [spread(_frames(PHANTOM_SCANNER, dynamic_range_db=dr)) for dr in (50.0, 80.0, 110.0)]
    assert spreads[0] > spreads[1] * 1.2 and spreads[1] > spreads[2] * 1.2


def _lag_correlation(frame, lag, axis):
    speckle = frame - cv2.GaussianBlur(frame, (0, 0), 4)  # the grain, without the anatomy
    a, b = (speckle[:, :-lag], speckle[:, lag:]) if axis == 1 else (speckle[:-lag], speckle[lag:])
    return np.corrcoef(a.ravel(), b.ravel())[0, 1]


def test_larger_speckle_correlates_over_longer_distances():
    frames = [_frames(PHANTOM_SCANNER, speckle_lateral_mm=s, speckle_axial_mm=0.7 * s)[0] for s in (0.08, 0.13, 0.25)]
    for axis in (0, 1):
        lag1 = [_lag_correlation(f, 1, axis) for f in frames]
        assert lag1[0] + 0.05 < lag1[1] < lag1[2] - 0.05, (axis, lag1)
    lag2 = [_lag_correlation(f, 2, 1) for f in frames]
    assert lag2[0] < lag2[1] < lag2[2] - 0.1


def test_coarser_resolution_blurs_edges():
    def skin_slope(frames):  # the steepest rise of the column-mean profile from the gel onto the skin line
        profile = frames.mean(axis=(0, 2))[:20]
        return np.diff(profile).max()

    def lateral_edges(frames):
        smooth = cv2.GaussianBlur(frames[0], (0, 0), 2)
        return np.percentile(np.abs(cv2.Sobel(smooth, cv2.CV_32F, 1, 0)), 99)

    clips = [_frames(PHANTOM_SCANNER, psf_lateral_mm=p, psf_axial_mm=p) for p in (0.0, 0.15, 0.3)]
    axial = [skin_slope(f) for f in clips]
    lateral = [lateral_edges(f) for f in clips]
    assert axial[0] > axial[1] * 1.2 and axial[1] > axial[2] * 1.2, axial
    assert lateral[0] > lateral[1] > lateral[2] * 1.1, lateral


def test_named_profiles_and_bad_settings():
    assert set(SCANNER_PROFILES) == {"phantom", "site_a_logiq", "site_b_cx50"}
    assert scanner_profile("site_b_cx50") is SITE_B_CX50
    assert SITE_A_LOGIQ.institution_name != SITE_B_CX50.institution_name
    with pytest.raises(ValueError, match="site_a_logiq"):
        scanner_profile("site_c")
    for field, value in (("dynamic_range_db", 5.0), ("gain_db", 40.0), ("speckle_axial_mm", 0.0),
                         ("psf_lateral_mm", -1.0), ("depth_mm", 5.0), ("noise_floor", -0.1), ("name", "")):
        with pytest.raises(ValueError, match=field):
            replace(PHANTOM_SCANNER, **{field: value})


def test_dicom_and_truth_name_the_profile_scanner(tmp_path):
    clip = generate_clip("control", 4, SMALL, profile=SITE_B_CX50)
    ds = pydicom.dcmread(write_dicom(clip, tmp_path / "b.dcm", patient_id="DEMO-001"))
    assert (ds.Manufacturer, ds.ManufacturerModelName, ds.InstitutionName) == (
        "Philips Medical Systems", "CX50", "Phantom District Clinic")
    assert ds.TransducerData == "L12-3" and ds.SequenceOfUltrasoundRegions[0].TransducerFrequency == 10000
    assert ds.SequenceOfUltrasoundRegions[0].PhysicalDeltaX == pytest.approx(35.0 / 120 / 10)
    override = pydicom.dcmread(write_dicom(clip, tmp_path / "o.dcm", institution_name="Elsewhere"))
    assert override.InstitutionName == "Elsewhere" and override.Manufacturer == "Philips Medical Systems"
    plain = pydicom.dcmread(write_dicom(generate_clip("control", 4, SMALL), tmp_path / "p.dcm"))
    assert "InstitutionName" not in plain  # the phantom scanner belongs to no institution
    assert ground_truth(clip)["scanner_profile"]["name"] == "site_b_cx50"


def _cohort(profile, n=16):
    """Per clip: (mean grey, grey SD, nerve interior mean, true CSA) for n hands per group, one frame each."""
    config = replace(SMALL, n_frames=1)
    rows = {}
    for group in ("control", "cts"):
        values = []
        for seed in range(n):
            clip = generate_clip(group, 300 + seed, config, profile=profile)
            frame = clip.frames[0].astype(float)
            values.append((frame.mean(), frame.std(), frame[_interior_mask(clip.outlines[0], frame.shape)].mean(),
                           clip.csa_mm2[0]))
        rows[group] = np.array(values)
    return rows


def test_two_site_cohort_shifts_domain_but_keeps_the_cts_signal():
    sites = {profile.name: _cohort(profile) for profile in (SITE_A_LOGIQ, SITE_B_CX50)}
    # Domain shift: the sites' intensity statistics differ by a large effect, and a nearest-centroid rule
    # on (mean, SD) names each image's site, leave-one-out.
    features = np.vstack([np.vstack([rows["control"], rows["cts"]])[:, :2] for rows in sites.values()])
    labels = np.repeat([0, 1], len(features) // 2)
    a, b = features[labels == 0, 0], features[labels == 1, 0]
    cohen_d = (a.mean() - b.mean()) / np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    assert abs(cohen_d) > 2.0
    z = (features - features.mean(0)) / features.std(0)
    correct = 0
    for i in range(len(z)):
        keep = np.arange(len(z)) != i
        centroids = [z[keep & (labels == k)].mean(0) for k in (0, 1)]
        correct += int(np.argmin([np.linalg.norm(z[i] - c) for c in centroids]) == labels[i])
    assert correct / len(z) >= 0.95
    # The CTS signal at each site: larger nerves (the same anatomy) and a darker nerve interior.
    for name, rows in sites.items():
        assert rows["cts"][:, 3].mean() > rows["control"][:, 3].mean() + 3, name
        assert rows["cts"][:, 2].mean() < rows["control"][:, 2].mean() - 8, name
        assert rows["cts"][:, 2].max() > rows["control"][:, 2].min(), name  # overlapping, not trivial
