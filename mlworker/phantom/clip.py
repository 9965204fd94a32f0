"""Synthetic short-axis B-mode clips of the median nerve at the carpal tunnel inlet.

There is no patient data in this project: every test, the demo study and the benchmarks run on
this phantom, so it models what the study's measurements and models look at.

Scene (image x grows towards the ulnar side, y grows with depth; isotropic pixels)
  * Gel and skin: an anechoic gel layer over a thin bright skin line, fixed to the probe.
  * Subcutaneous tissue: hypoechoic fat crossed by thin, broken hyperechoic septa.
  * Transverse carpal ligament (TCL): a ~1 mm bright fibrillar band, bowed towards the skin,
    just superficial to the nerve, ending on bright bone surfaces (scaphoid tubercle radially,
    pisiform ulnarly) that cast acoustic shadows. The ulnar artery (anechoic, with posterior
    enhancement) lies superficial and ulnar in Guyon's canal.
  * Flexor tendons: 5-7 bright oval structures with a punctate ("fibrillar" in cross-section)
    texture and a brighter peritenon rim, packed deep and ulnar of the nerve (flexor pollicis
    longus may sit radial-deep); the carpal bones form a bright, shadowing tunnel floor.
  * Median nerve: centre 9.5-12 mm deep, directly under the ligament (moved only when a
    small field of view requires it). A closed outline (ellipse with small 3rd-5th harmonic irregularities), a
    hyperechoic epineurium ring around a "honeycomb" interior: hypoechoic fascicles (Voronoi
    cells around jittered centres) separated by bright interfascicular epineurium/perineurium.
  * Image formation: echogenicity map x speckle, depth attenuation left over after time-gain
    compensation (~8-13 dB over 30 mm), a noise floor and power-law compression to 8-bit grey.
    Speckle per look is Rayleigh (magnitude of a complex Gaussian field correlated by a small
    anisotropic blur: grain ~0.3 x 0.2 mm); two looks are compounded incoherently, as spatial
    compounding does on clinical scanners (set LOOKS = 1 for pure Rayleigh).
  * Scanner: a `ScannerProfile` (mlworker/phantom/scanners.py) sets the machine's gain, dynamic range,
    speckle grain, resolution, depth, noise floor and TGC slope; the default `PHANTOM_SCANNER` is the
    image formation described above, bit for bit. The profile changes only how the scene is imaged,
    never the scene or the random streams, so one seed gives the same hand through every scanner.
  * Motion: a probe slide moves the whole anatomy a few millimetres over the clip (2-4 mm, mostly
    lateral, with non-uniform speed and slight tremor); the nerve also glides relative to its
    neighbours (<= 0.6 mm) and deforms slightly (axes +-2-5 %, rotation +-1-4 deg). Speckle moves
    with the tissue and decorrelates frame to frame (elevational motion). The 15 mm square ROI
    centred on the nerve (which always contains the whole outline) stays inside the frame.

Groups (per hand, drawn by `sample_nerve_params`; all overlapping, none separates the groups alone)
  * CSA: control 8.2 +- 2.4 mm2, CTS 14.7 +- 5.3 mm2 (the study's reference values), normal,
    truncated to 4-40 mm2.
  * Flattening ratio (major/minor axis): control 3.0 +- 0.5, CTS 2.5 +- 0.5 (swollen nerves are
    rounder); capped so the major axis stays <= 12 mm.
  * Interior echogenicity (relative to the ligament): control 0.48 +- 0.09, CTS 0.38 +- 0.09
    (oedema makes the nerve hypoechoic).
  * Visible fascicles: control 13 +- 3.5 (5-24), CTS 9 +- 3.5 (3-20), with lower fascicle contrast
    in CTS (0.48 vs 0.62 +- 0.12); epineurium sharpness 0.60 +- 0.14 vs 0.75 +- 0.12 (blurred
    outline in CTS). Each feature alone shifts by only ~1 SD between the groups.
  These are modelling choices apart from the CSA references; they follow the qualitative findings
  of the CTS ultrasound literature (enlarged, rounder, hypoechoic nerve with loss of the
  fascicular pattern and a poorly defined epineurium).

Seeds
  `generate_clip(group, seed)` derives three independent streams from
  `np.random.SeedSequence(seed)`: child 0 draws the hand (`sample_nerve_params`), child 1 the
  scene layout and motion, child 2 the speckle. Hence the same seed gives identical output, and
  passing `params=` swaps the hand while the seed's scene and speckle streams stay the same (the
  layout still adapts to the nerve's size). Seeds must be non-negative integers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from mlworker.phantom.scanners import PHANTOM_SCANNER, ScannerProfile

GROUPS = ("control", "cts")
CSA_REFERENCE_MM2 = {"control": (8.2, 2.4), "cts": (14.7, 5.3)}  # mean, SD
CSA_RANGE_MM2 = (4.0, 40.0)
ROI_SIZE_MM = 15.0  # square ROI centred on the nerve that must stay inside the frame
OUTLINE_POINTS = 64
MAX_MAJOR_AXIS_MM = 12.0
LOOKS = 2  # incoherently compounded speckle looks (1 = pure Rayleigh)

# (mean, sd, low, high) per group for the per-hand appearance parameters.
_DISTS: dict[str, dict[str, tuple[float, float, float, float]]] = {
    "control": {
        "flattening": (3.0, 0.5, 1.5, 5.0),
        "echogenicity": (0.48, 0.09, 0.20, 0.80),
        "fascicle_count": (13.0, 3.5, 5.0, 24.0),
        "fascicle_contrast": (0.62, 0.12, 0.20, 0.95),
        "epineurium_sharpness": (0.75, 0.12, 0.30, 1.00),
    },
    "cts": {
        "flattening": (2.5, 0.5, 1.3, 5.0),
        "echogenicity": (0.38, 0.09, 0.12, 0.70),
        "fascicle_count": (9.0, 3.5, 3.0, 20.0),
        "fascicle_contrast": (0.48, 0.12, 0.10, 0.90),
        "epineurium_sharpness": (0.60, 0.14, 0.15, 1.00),
    },
}


@dataclass(frozen=True)
class PhantomConfig:
    """Image geometry and timing of a phantom clip."""

    width: int = 320
    height: int = 240
    n_frames: int = 100
    fps: float = 25.0
    pixel_spacing_mm: float = 0.125  # isotropic; 320x240 px = 40 x 30 mm field

    def __post_init__(self) -> None:
        if self.width < 16 or self.height < 16 or self.n_frames < 1:
            raise ValueError("PhantomConfig needs width/height >= 16 px and n_frames >= 1")
        if not (self.fps > 0 and self.pixel_spacing_mm > 0):
            raise ValueError("PhantomConfig needs fps > 0 and pixel_spacing_mm > 0")


@dataclass(frozen=True)
class NerveParams:
    """Per-hand nerve properties (drawn by `sample_nerve_params`)."""

    group: str  # 'control' | 'cts'
    csa_mm2: float  # nominal cross-sectional area (area of the undeformed outline polygon)
    flattening: float  # major/minor axis ratio of the underlying ellipse
    echogenicity: float  # mean interior echo level relative to the ligament (0-1)
    fascicle_count: int  # visible fascicles
    epineurium_sharpness: float  # 1 = crisp bright ring, 0 = fully blurred
    fascicle_contrast: float = 0.6  # dark fascicle vs bright septa contrast (0-1)
    epineurium_thickness_mm: float = 0.35
    rotation_deg: float = 0.0  # major-axis tilt from horizontal
    shape_harmonics: tuple[tuple[int, float, float], ...] = ()  # (order, rel. amplitude, phase)

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"group must be one of {GROUPS}, got {self.group!r}")
        lo, hi = CSA_RANGE_MM2
        if not lo <= self.csa_mm2 <= hi:
            raise ValueError(f"csa_mm2 must lie in {lo}-{hi} mm2, got {self.csa_mm2}")
        if self.flattening < 1.0 or self.fascicle_count < 1:
            raise ValueError("flattening must be >= 1 and fascicle_count >= 1")


@dataclass
class PhantomClip:
    """A rendered clip with its ground truth."""

    frames: np.ndarray  # (N, H, W) uint8 grey
    pixel_spacing_mm: tuple[float, float]  # (row, col) mm per pixel
    fps: float
    outlines: list[np.ndarray]  # per frame (K, 2) float32 (x, y) px, closed polygon
    centers: np.ndarray  # (N, 2) float (x, y) px
    csa_mm2: np.ndarray  # (N,) area of each outline polygon in mm2
    params: NerveParams
    seed: int | None = None
    profile: ScannerProfile = PHANTOM_SCANNER  # the scanner that imaged it


@dataclass(frozen=True)
class _Scene:
    """Layout and motion of one clip, all in pixels of the frame at t=0."""

    center0: tuple[float, float]
    drift: np.ndarray  # (N, 2) whole-anatomy shift (probe slide + tremor)
    glide: np.ndarray  # (N, 2) nerve motion relative to its neighbours
    scale: np.ndarray  # (N, 2) per-frame factors of the semi-axes
    rotation_deg: np.ndarray  # (N,)
    semi_axes: tuple[float, float]  # nominal (a, b) px
    fascicles: np.ndarray  # (F, 2) centres in the unit-disc (u, v) frame of the nerve
    atten_db_per_mm: float
    gain: float


def truncated_normal(rng: np.random.Generator, mean: float, sd: float, lo: float, hi: float) -> float:
    """One draw of N(mean, sd) truncated to [lo, hi] by rejection."""
    for _ in range(1000):
        x = rng.normal(mean, sd)
        if lo <= x <= hi:
            return float(x)
    return float(np.clip(mean, lo, hi))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, overflow-safe."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _check_group(group: str) -> None:
    if group not in GROUPS:
        raise ValueError(f"group must be 'control' or 'cts', got {group!r}")


def sample_nerve_params(group: str, rng: np.random.Generator) -> NerveParams:
    """Draw one hand's nerve properties from the group's (overlapping) distributions."""
    _check_group(group)
    d = _DISTS[group]
    csa = truncated_normal(rng, *CSA_REFERENCE_MM2[group], *CSA_RANGE_MM2)
    # Cap flattening so the major axis 2*sqrt(csa*fr/pi) stays anatomically plausible.
    fr_cap = math.pi * (MAX_MAJOR_AXIS_MM / 2) ** 2 / csa
    fl = d["flattening"]
    flattening = truncated_normal(rng, fl[0], fl[1], fl[2], min(fl[3], fr_cap))
    harmonics = tuple(
        (k, float(rng.uniform(0.005, 0.03)), float(rng.uniform(0, 2 * math.pi))) for k in (3, 4, 5)
    )
    return NerveParams(
        group=group,
        csa_mm2=csa,
        flattening=flattening,
        echogenicity=truncated_normal(rng, *d["echogenicity"]),
        fascicle_count=int(round(truncated_normal(rng, *d["fascicle_count"]))),
        epineurium_sharpness=truncated_normal(rng, *d["epineurium_sharpness"]),
        fascicle_contrast=truncated_normal(rng, *d["fascicle_contrast"]),
        epineurium_thickness_mm=truncated_normal(rng, 0.35, 0.06, 0.2, 0.55),
        rotation_deg=truncated_normal(rng, 0.0, 5.0, -12.0, 12.0),
        shape_harmonics=harmonics,
    )


def _radius_profile(phi: np.ndarray, harmonics: tuple[tuple[int, float, float], ...]) -> np.ndarray:
    """Relative outline radius r(phi) in the nerve's normalised (unit-ellipse) frame."""
    r = np.ones_like(phi)
    for k, amp, phase in harmonics:
        r = r + amp * np.cos(k * phi + phase)
    return r


def polygon_area(points: np.ndarray) -> float:
    """Shoelace area of a closed polygon given as (K, 2) (x, y) vertices, in squared units."""
    x = np.asarray(points[:, 0], dtype=np.float64)
    y = np.asarray(points[:, 1], dtype=np.float64)
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _unit_outline(harmonics: tuple[tuple[int, float, float], ...]) -> np.ndarray:
    """Outline of the nerve for unit semi-axes, (K, 2) in the nerve frame."""
    phi = np.linspace(0, 2 * math.pi, OUTLINE_POINTS, endpoint=False)
    r = _radius_profile(phi, harmonics)
    return np.stack([r * np.cos(phi), r * np.sin(phi)], axis=1)


def _smooth_curve(rng: np.random.Generator, t: np.ndarray, freqs: tuple[float, float]) -> np.ndarray:
    """Smooth zero-mean random curve of unit peak amplitude (sum of 3 random sinusoids)."""
    y = np.zeros_like(t)
    for _ in range(3):
        f = rng.uniform(*freqs)
        y += rng.uniform(0.5, 1.0) * np.sin(2 * math.pi * f * t + rng.uniform(0, 2 * math.pi))
    peak = np.abs(y).max() if y.size > 1 else 1.0
    return y / max(peak, 1e-9)


def _nerve_outline(scene: _Scene, params: NerveParams, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame i's outline polygon (K, 2) and centre (2,), in frame pixels."""
    a = scene.semi_axes[0] * scene.scale[i, 0]
    b = scene.semi_axes[1] * scene.scale[i, 1]
    th = math.radians(scene.rotation_deg[i])
    unit = _unit_outline(params.shape_harmonics)
    local = unit * np.array([a, b])
    rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    center = np.array(scene.center0) + scene.drift[i] + scene.glide[i]
    return local @ rot.T + center, center


def _build_scene(params: NerveParams, config: PhantomConfig, rng: np.random.Generator) -> _Scene:
    """Draw the clip's layout and motion; raise if the field of view cannot host it."""
    sp = config.pixel_spacing_mm
    n = config.n_frames
    t = np.linspace(0.0, 1.0, n)
    ts = np.arange(n) / config.fps  # seconds, for physiological tremor

    # Nominal semi-axes such that the undeformed polygon has exactly params.csa_mm2.
    unit_area = polygon_area(_unit_outline(params.shape_harmonics))
    ab = params.csa_mm2 / (sp * sp) / unit_area
    b = math.sqrt(ab / params.flattening)
    a = b * params.flattening

    # Probe slide: 2-4 mm mostly lateral, non-uniform speed (s' = 1 + beta cos > 0), tremor.
    dist = rng.uniform(2.0, 4.0) / sp
    ang = math.radians(rng.uniform(-20, 20))
    sign = rng.choice([-1.0, 1.0])
    beta = rng.uniform(-0.6, 0.6)
    s = t + beta * np.sin(2 * math.pi * t) / (2 * math.pi)
    drift = np.stack([sign * math.cos(ang) * s, math.sin(ang) * s], axis=1) * dist
    tremor = 0.06 / sp
    drift += tremor * np.stack([_smooth_curve(rng, ts, (1.0, 4.0)), _smooth_curve(rng, ts, (1.0, 4.0))], 1)
    glide_x = rng.uniform(0.15, 0.6) / sp * _smooth_curve(rng, t, (0.3, 0.9))
    glide_y = rng.uniform(0.03, 0.15) / sp * _smooth_curve(rng, t, (0.3, 0.9))
    glide = np.stack([glide_x, glide_y], axis=1)
    scale = 1.0 + np.stack(
        [rng.uniform(0.02, 0.05) * _smooth_curve(rng, t, (0.3, 1.2)),
         rng.uniform(0.02, 0.05) * _smooth_curve(rng, t, (0.3, 1.2))], axis=1)
    rot = params.rotation_deg + rng.uniform(1.0, 4.0) * _smooth_curve(rng, t, (0.3, 1.2))

    # Place the path so that the 15 mm ROI (or the whole nerve, if larger) stays inside.
    path = drift + glide
    bulge = 1.0 + sum(amp for _, amp, _ in params.shape_harmonics)
    half = max(ROI_SIZE_MM / 2 / sp, a * float(scale.max()) * bulge + 1.0 / sp)
    w, h = config.width - 1, config.height - 1
    x_lo, x_hi = half - path[:, 0].min(), w - half - path[:, 0].max()
    y_lo, y_hi = half - path[:, 1].min(), h - half - path[:, 1].max()
    if x_lo > x_hi or y_lo > y_hi:
        need = 2 * half * sp + 4.0
        raise ValueError(
            f"the {config.width * sp:.1f} x {config.height * sp:.1f} mm field of view cannot hold the "
            f"{2 * half * sp:.1f} mm nerve ROI plus its motion; use at least {need:.0f} x {need:.0f} mm "
            "(increase width/height or pixel_spacing_mm)")
    # Anatomically the nerve centre lies ~9.5-12 mm deep; honour that when the field allows.
    y_pref = rng.uniform(9.5, 12.0) / sp
    cy = float(np.clip(y_pref, y_lo, y_hi))
    cx = float(rng.uniform(x_lo, x_hi))

    # Fascicle centres: jittered, minimum-spacing points in the unit disc of the nerve frame.
    nf = params.fascicle_count
    min_sep = 1.2 / math.sqrt(nf)
    pts: list[np.ndarray] = []
    cand = rng.uniform(-1, 1, size=(4000, 2))
    for c in cand[np.hypot(cand[:, 0], cand[:, 1]) < 0.78]:
        if all(np.hypot(*(c - p)) >= min_sep for p in pts):
            pts.append(c)
            if len(pts) == nf:
                break
    fascicles = np.array(pts, dtype=np.float32).reshape(-1, 2)

    return _Scene(
        center0=(cx, cy), drift=drift, glide=glide, scale=scale, rotation_deg=rot,
        semi_axes=(a, b), fascicles=fascicles,
        atten_db_per_mm=float(rng.uniform(0.25, 0.45)), gain=float(rng.uniform(0.9, 1.1)),
    )


def _soft_ellipse(x: np.ndarray, y: np.ndarray, cx: float, cy: float, a: float, b: float,
                  ang: float) -> np.ndarray:
    """Normalised elliptic radius (1 on the boundary) on a pixel grid."""
    c, s = math.cos(ang), math.sin(ang)
    dx, dy = x - cx, y - cy
    u = (c * dx + s * dy) / a
    v = (-s * dx + c * dy) / b
    return np.sqrt(u * u + v * v)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sx: float, sy: float) -> np.ndarray:
    """Gaussian noise blurred by (sx, sy) px and rescaled to unit SD."""
    import cv2

    z = rng.standard_normal(shape, dtype=np.float32)
    z = cv2.GaussianBlur(z, (0, 0), sigmaX=max(sx, 0.3), sigmaY=max(sy, 0.3))
    return z / max(float(z.std()), 1e-6)


def _render_background(scene: _Scene, params: NerveParams, config: PhantomConfig,
                       rng: np.random.Generator, pad: int) -> np.ndarray:
    """Echogenicity of everything but the nerve, on a canvas padded by `pad` px (tissue frame)."""
    sp = config.pixel_spacing_mm
    H, W = config.height + 2 * pad, config.width + 2 * pad
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    x = xx - pad  # frame-0 pixel coordinates
    y = yy - pad
    mm = 1.0 / sp
    ncx, ncy = scene.center0
    a, b = scene.semi_axes

    # Ligament geometry: bowed towards the skin, centred a little ulnar of the nerve.
    gap = rng.uniform(0.3, 0.7) * mm
    thick = rng.uniform(0.9, 1.3) * mm
    tcl_xc = ncx + rng.uniform(1.0, 4.0) * mm
    span = rng.uniform(22.0, 28.0) * mm
    bow = rng.uniform(0.008, 0.015) / mm  # px of depth per px^2 of lateral offset
    # Highest point of the (tilted, deforming) nerve, so the ligament never cuts into it.
    tilt = math.radians(float(np.abs(scene.rotation_deg).max()))
    top = math.hypot(a * math.sin(tilt), b * math.cos(tilt)) * float(scene.scale.max())
    tcl_bottom_at_nerve = ncy - top * 1.05 - gap
    tcl_top0 = tcl_bottom_at_nerve - thick - bow * (ncx - tcl_xc) ** 2
    tcl_top = tcl_top0 + bow * (x - tcl_xc) ** 2
    floor_y0 = ncy + rng.uniform(8.5, 11.0) * mm
    floor_y = floor_y0 - rng.uniform(0.004, 0.008) / mm * (x - tcl_xc) ** 2

    # Base tissue: fat above the ligament, tunnel contents below, mild heterogeneity.
    het = 1.0 + 0.18 * _smooth_noise(rng, (H, W), 2.5 * mm, 1.5 * mm)
    E = np.where(y < tcl_top, 0.28, 0.22).astype(np.float32) * het

    # Subcutaneous septa: thin, broken, wavy near-horizontal bright lines.
    for _ in range(int(rng.integers(3, 7))):
        y0 = rng.uniform(1.5, 7.0) * mm
        yl = y0 + rng.uniform(0.3, 0.8) * mm * np.sin(2 * math.pi * x / (rng.uniform(8, 20) * mm)
                                                       + rng.uniform(0, 6.3)) + rng.uniform(-0.05, 0.05) * x
        width = max(0.08 * mm, 0.6)
        gate = np.clip(_smooth_noise(rng, (1, W), 3 * mm, 0.3) * 0.8 + 0.3, 0, 1)
        line = np.exp(-(((y - yl) / width) ** 2)) * gate
        E += (0.55 * line * (y < tcl_top - 0.5 * mm)).astype(np.float32)

    # Transverse carpal ligament: bright fibrillar band, fading at its bony insertions.
    fib = np.clip(0.85 + 0.25 * _smooth_noise(rng, (H, W), 1.5 * mm, 0.12 * mm), 0.4, 1.3)
    band = _sigmoid((y - tcl_top) / 0.6) * _sigmoid((tcl_top + thick - y) / 0.6)
    ends = np.clip((span / 2 - np.abs(x - tcl_xc)) / (1.5 * mm), 0, 1)
    E = E * (1 - band * ends) + (1.05 * fib * band * ends).astype(np.float32)

    # Flexor tendons, packed deep/ulnar of the nerve, kept clear of the nerve's glide/deformation.
    clearance = float(np.abs(scene.glide).max()) + 0.6 * mm
    th = math.radians(params.rotation_deg)
    rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    nerve_edge = (_unit_outline(params.shape_harmonics) * np.array([a, b]) * float(scene.scale.max())) @ rot.T
    nerve_edge = nerve_edge + np.array([ncx, ncy])
    n_tendons = int(rng.integers(5, 8))
    tendons: list[tuple[float, float, float, float, float]] = []
    for _ in range(600):
        if len(tendons) == n_tendons:
            break
        ta, tb = rng.uniform(1.8, 2.8) * mm, rng.uniform(1.2, 1.8) * mm
        tx = ncx + rng.uniform(-6.0, 12.0) * mm
        ty = ncy + rng.uniform(-1.0, 8.0) * mm
        tang = math.radians(rng.uniform(-25, 25))
        if _soft_ellipse(np.array([tx]), np.array([ty]), ncx, ncy, a, b, 0.0)[0] < 1.0:
            continue  # centre inside the nerve
        if np.hypot(*(nerve_edge - (tx, ty)).T).min() < ta + clearance:
            continue
        if ty + tb > floor_y0 - 0.5 * mm:
            continue
        if ty - tb < tcl_top0 + bow * (tx - tcl_xc) ** 2 + thick + 0.4 * mm:
            continue
        if any(math.hypot(tx - ox, ty - oy) < ta + oa + 0.2 * mm for ox, oy, oa, _, _ in tendons):
            continue
        tendons.append((tx, ty, ta, tb, tang))
    punct = np.clip(0.8 + 0.35 * _smooth_noise(rng, (H, W), 0.08 * mm, 0.08 * mm), 0.3, 1.4)
    for tx, ty, ta, tb, tang in tendons:
        r = _soft_ellipse(x, y, tx, ty, ta, tb, tang)
        inside = _sigmoid((1 - r) * min(ta, tb) / 0.6)
        rim = np.exp(-(((r - 1) * min(ta, tb) / max(0.12 * mm, 0.7)) ** 2))
        E = E * (1 - inside) + (0.7 * punct * inside + 0.25 * rim).astype(np.float32)

    # Tunnel floor (carpal bones) and the bones at the ligament's ends, with acoustic shadows.
    bones = [floor_y]
    for side in (-1, 1):
        bx = tcl_xc + side * (span / 2 + rng.uniform(1.0, 2.5) * mm)
        br = rng.uniform(2.0, 3.0) * mm
        # Keep the bone (and its shadow) lateral to even a large, flat, gliding nerve.
        reach = a * float(scene.scale.max()) + br + clearance
        bx = ncx + side * max(side * (bx - ncx), reach)
        by = tcl_top0 + bow * (bx - tcl_xc) ** 2 + thick + rng.uniform(2.0, 4.0) * mm + br
        surf = np.where(np.abs(x - bx) < br, by - np.sqrt(np.clip(br ** 2 - (x - bx) ** 2, 0, None)), np.inf)
        bones.append(surf)
    for surf in bones:
        E = np.where(y > surf + 0.5 * mm, E * 0.08, E)
        E += (1.5 * np.exp(-(((y - surf) / max(0.15 * mm, 0.8)) ** 2))).astype(np.float32)

    # Ulnar artery in Guyon's canal: anechoic lumen with posterior enhancement.
    ax = tcl_xc + span / 2 - rng.uniform(1.0, 3.0) * mm
    ar = rng.uniform(1.0, 1.3) * mm
    ay = tcl_top0 + bow * (ax - tcl_xc) ** 2 - ar - rng.uniform(0.3, 1.0) * mm
    rr = np.hypot(x - ax, y - ay)
    behind = (np.abs(x - ax) < ar) & (y > ay) & (y < ay + 4 * mm)
    E = np.where(behind, E * 1.3, E)
    lumen = _sigmoid((ar - rr) / 0.6)
    E = E * (1 - lumen) + 0.02 * lumen
    return E.astype(np.float32)


def _render_nerve(E: np.ndarray, scene: _Scene, params: NerveParams, config: PhantomConfig,
                  i: int) -> None:
    """Composite frame i's nerve into the echogenicity map E (in place)."""
    sp = config.pixel_spacing_mm
    a = scene.semi_axes[0] * scene.scale[i, 0]
    b = scene.semi_axes[1] * scene.scale[i, 1]
    th = math.radians(scene.rotation_deg[i])
    cx, cy = np.array(scene.center0) + scene.drift[i] + scene.glide[i]
    ring_t = params.epineurium_thickness_mm / sp
    sigma = max(ring_t / 2 * (1 + 2.5 * (1 - params.epineurium_sharpness)), 0.5)
    reach = a * 1.15 + 4 * sigma + 3
    x0, x1 = max(int(cx - reach), 0), min(int(cx + reach) + 2, E.shape[1])
    y0, y1 = max(int(cy - reach), 0), min(int(cy + reach) + 2, E.shape[0])
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    c, s = math.cos(th), math.sin(th)
    dx, dy = xx - cx, yy - cy
    lu = c * dx + s * dy  # nerve-frame coordinates (px)
    lv = -s * dx + c * dy
    u, v = lu / a, lv / b
    phi = np.arctan2(v, u)
    rho = np.hypot(u, v)
    f = rho / _radius_profile(phi, params.shape_harmonics) - 1.0
    gy, gx = np.gradient(f)
    sd = f / np.maximum(np.hypot(gx, gy), 1e-3)  # ~signed distance to the outline, px
    inside = _sigmoid(-sd / 0.5)

    # Honeycomb: Voronoi cells (fascicles) around the centres, bright septa on cell borders.
    fc = scene.fascicles * np.array([a, b], dtype=np.float32)
    d1 = np.full(lu.shape, np.inf, np.float32)
    d2 = np.full(lu.shape, np.inf, np.float32)
    for fx, fy in fc:
        d = np.hypot(lu - fx, lv - fy)
        d2 = np.minimum(d2, np.maximum(d1, d))
        d1 = np.minimum(d1, d)
    cell = math.sqrt(math.pi * a * b / max(len(fc), 1))  # typical fascicle spacing, px
    septum_w = max(0.1 / sp, 0.5)
    septa = np.exp(-(((d2 - d1) / septum_w) ** 2))
    matrix = _sigmoid((d1 - 0.45 * cell) / max(0.06 * cell, 0.3))  # between fascicles
    bright = np.maximum(septa, matrix)
    # Fascicles fill ~2/3 of the section, so the mean interior level stays close to e.
    e, k = params.echogenicity, params.fascicle_contrast
    interior = e * (1 - 0.7 * k) + e * 1.9 * k * bright

    ring = (1.3 * min(1.0, ring_t / 2 / sigma)) * np.exp(-((sd / sigma) ** 2))
    patch = E[y0:y1, x0:x1]
    patch[:] = patch * (1 - inside) + interior * inside
    patch[:] = np.maximum(patch, ring)


def generate_clip(group: str, seed: int, config: PhantomConfig = PhantomConfig(),
                  params: NerveParams | None = None, profile: ScannerProfile = PHANTOM_SCANNER) -> PhantomClip:
    """Render one seeded phantom clip of a 'control' or 'cts' hand, imaged by `profile`, with its ground truth.

    A profile with a depth sets the pixel spacing (the frame keeps config's size in pixels).
    """
    import cv2  # loaded where clips are drawn: the web process imports this module for its names

    _check_group(group)
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    ss_params, ss_scene, ss_speckle = np.random.SeedSequence(int(seed)).spawn(3)
    if params is None:
        params = sample_nerve_params(group, np.random.default_rng(ss_params))
    elif params.group != group:
        raise ValueError(f"params are for group {params.group!r} but group={group!r}; pass matching values")
    if profile.depth_mm is not None:
        config = replace(config, pixel_spacing_mm=profile.pixel_spacing_mm(config.height, config.pixel_spacing_mm))
    rng = np.random.default_rng(ss_scene)
    srng = np.random.default_rng(ss_speckle)
    scene = _build_scene(params, config, rng)
    sp = config.pixel_spacing_mm
    H, W, N = config.height, config.width, config.n_frames

    pad = int(math.ceil(np.abs(scene.drift).max())) + 4
    background = _render_background(scene, params, config, rng, pad)

    depth_mm = (np.arange(H, dtype=np.float32) * sp)[:, None]
    atten = (10 ** (-scene.atten_db_per_mm * depth_mm / 20)).astype(np.float32)
    # The profile's receive gain and TGC slope amplify echoes and noise alike (skipped at 0 dB: bit-exact).
    receive = None
    if profile.gain_db or profile.tgc_db_per_mm:
        receive = (profile.gain * 10 ** (profile.tgc_db_per_mm * depth_mm / 20)).astype(np.float32)
    psf = None
    if profile.psf_lateral_mm or profile.psf_axial_mm:
        psf = (max(profile.psf_lateral_mm / sp, 1e-3), max(profile.psf_axial_mm / sp, 1e-3))
    exponent = profile.compression_exponent
    gel_end, skin_w = int(round(0.6 / sp)), max(0.25 / sp, 1.0)
    skin = np.exp(-(((np.arange(H) - gel_end - skin_w) / skin_w) ** 2)).astype(np.float32)[:, None]

    # Speckle grain ~0.3 mm lateral x 0.2 mm axial by default (18 MHz linear probe).
    sx, sy = max(profile.speckle_lateral_mm / sp, 0.35), max(profile.speckle_axial_mm / sp, 0.3)

    # Innovations are random crops of one correlated noise bank twice the frame size: drawing a
    # fresh field per frame would dominate the run time, and distinct crops are uncorrelated.
    bank = srng.standard_normal((2 * H, 2 * W, 2 * LOOKS), dtype=np.float32)
    bank = cv2.GaussianBlur(bank, (0, 0), sigmaX=sx, sigmaY=sy)
    bank /= bank.std()

    def innovation() -> np.ndarray:
        oy, ox = int(srng.integers(0, H + 1)), int(srng.integers(0, W + 1))
        return bank[oy:oy + H, ox:ox + W]

    rho = 0.93  # frame-to-frame speckle correlation (elevational slip)
    z = innovation()
    frames = np.empty((N, H, W), np.uint8)
    outlines: list[np.ndarray] = []
    centers = np.empty((N, 2))
    csa = np.empty(N)
    for i in range(N):
        gx, gy = scene.drift[i]
        m = np.float32([[1, 0, pad - gx], [0, 1, pad - gy]])
        E = cv2.warpAffine(background, m, (W, H), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        _render_nerve(E, scene, params, config, i)
        E[:gel_end] = 0.01
        E = np.maximum(E, 1.1 * skin)
        if psf is not None:
            E = cv2.GaussianBlur(E, (0, 0), sigmaX=psf[0], sigmaY=psf[1])
        if i > 0:
            dgx, dgy = scene.drift[i] - scene.drift[i - 1]
            mz = np.float32([[1, 0, -dgx], [0, 1, -dgy]])
            z = cv2.warpAffine(z, mz, (W, H), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REFLECT)
            z = rho * z / z.std() + math.sqrt(1 - rho * rho) * innovation()
        amp = np.sqrt(np.einsum("ijk,ijk->ij", z, z) / (2 * LOOKS))  # E[amp^2] = 1
        # Noise floor: the mirrored speckle field is a cheap stand-in for electronic noise.
        env = E * amp * atten * scene.gain + profile.noise_floor * amp[::-1]
        if receive is not None:
            env = env * receive
        img = 255.0 * np.power(np.clip(env / 1.3, 0, 1), exponent)
        frames[i] = img.astype(np.uint8)

        poly, center = _nerve_outline(scene, params, i)
        poly = poly.astype(np.float32)
        outlines.append(poly)
        centers[i] = center
        csa[i] = polygon_area(poly) * sp * sp
    return PhantomClip(frames=frames, pixel_spacing_mm=(sp, sp), fps=float(config.fps),
                       outlines=outlines, centers=centers, csa_mm2=csa, params=params, seed=int(seed),
                       profile=profile)
