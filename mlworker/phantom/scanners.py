"""Simulated scanners: how one machine at one site turns the phantom's tissue into a grey image.

A clinical study that spans sites sees the same anatomy through different machines and presets: another
gain, dynamic range, speckle grain (transmit frequency and beam), resolution, depth and noise. A
`ScannerProfile` holds these settings and the DICOM identity of the machine (manufacturer, model,
institution); `generate_clip(..., profile=...)` applies them during image formation, so a cohort can be
rendered across sites with a controlled, measurable domain shift while the anatomy (nerve CSA, its
echogenicity relative to its neighbours) is drawn exactly as before.

`PHANTOM_SCANNER`, the default, reproduces the phantom's original images bit for bit: every setting is
the value the image formation always used, and the added stages (PSF blur, time-gain slope, depth) are
switched off. The named profiles live in `SCANNER_PROFILES`; their makes and institutions are fictional
stand-ins for two sites' machines, not models of the real devices' image quality.
"""

from __future__ import annotations

from dataclasses import dataclass

REFERENCE_DYNAMIC_RANGE_DB = 80.0  # the phantom's grey map env**0.6 spans ~80 dB between grey 1 and 255
REFERENCE_EXPONENT = 0.6


@dataclass(frozen=True)
class ScannerProfile:
    """One scanner at one site: image-formation settings plus the identity its DICOM files carry."""

    name: str = "phantom"
    manufacturer: str = "CTS-Study phantom"
    model_name: str = "Phantom US"
    institution_name: str = ""
    transducer: str = "L18-4"
    frequency_mhz: float = 18.0
    # Overall receive gain applied to the echo envelope, dB (0 = the phantom's level).
    gain_db: float = 0.0
    # Displayed dynamic range: the grey map is (env/1.3)**(0.6 * 80/DR), so a wider range compresses the
    # echoes more (a flatter, lower-contrast picture) and a narrower one gives more contrast.
    dynamic_range_db: float = REFERENCE_DYNAMIC_RANGE_DB
    # Speckle grain: SD of the blur correlating the complex speckle field, lateral x axial, mm (grows as the
    # transmit frequency falls).
    speckle_lateral_mm: float = 0.13
    speckle_axial_mm: float = 0.09
    # Point-spread blur of the tissue echo map (edges), SD in mm; 0 = the phantom's ideal resolution.
    psf_lateral_mm: float = 0.0
    psf_axial_mm: float = 0.0
    # Imaging depth of the frame, mm: sets the pixel spacing (height rows cover this depth, pixels stay
    # square); None keeps the PhantomConfig's spacing.
    depth_mm: float | None = None
    # Electronic noise floor, relative to the echo of the ligament (1.0); 0.01 = the phantom's.
    noise_floor: float = 0.01
    # Time-gain compensation beyond the phantom's: a gain slope with depth, dB/mm (positive brightens the
    # deep field; negative leaves more attenuation uncorrected).
    tgc_db_per_mm: float = 0.0

    def __post_init__(self) -> None:
        if not self.name or not self.manufacturer or not self.model_name:
            raise ValueError("a ScannerProfile needs a name, a manufacturer and a model_name")
        if not 20.0 <= self.dynamic_range_db <= 120.0:
            raise ValueError(f"dynamic_range_db must be from 20 to 120 dB, got {self.dynamic_range_db}")
        if not -20.0 <= self.gain_db <= 20.0:
            raise ValueError(f"gain_db must be from -20 to 20 dB, got {self.gain_db}")
        if not (0.02 <= self.speckle_lateral_mm <= 1.0 and 0.02 <= self.speckle_axial_mm <= 1.0):
            raise ValueError("speckle_lateral_mm and speckle_axial_mm must be from 0.02 to 1 mm")
        if not (0.0 <= self.psf_lateral_mm <= 2.0 and 0.0 <= self.psf_axial_mm <= 2.0):
            raise ValueError("psf_lateral_mm and psf_axial_mm must be from 0 to 2 mm")
        if self.depth_mm is not None and not 10.0 <= self.depth_mm <= 80.0:
            raise ValueError(f"depth_mm must be from 10 to 80 mm (or None), got {self.depth_mm}")
        if not 0.0 <= self.noise_floor <= 0.5:
            raise ValueError(f"noise_floor must be from 0 to 0.5, got {self.noise_floor}")
        if not -1.0 <= self.tgc_db_per_mm <= 1.0:
            raise ValueError(f"tgc_db_per_mm must be from -1 to 1 dB/mm, got {self.tgc_db_per_mm}")
        if not self.frequency_mhz > 0:
            raise ValueError(f"frequency_mhz must be positive, got {self.frequency_mhz}")

    @property
    def gain(self) -> float:
        """Linear envelope gain (1.0 exactly at 0 dB)."""
        return 10 ** (self.gain_db / 20)

    @property
    def compression_exponent(self) -> float:
        """Exponent of the power-law grey map (0.6 exactly at the reference dynamic range)."""
        return REFERENCE_EXPONENT * (REFERENCE_DYNAMIC_RANGE_DB / self.dynamic_range_db)

    def pixel_spacing_mm(self, height_px: int, default_mm: float) -> float:
        """Isotropic pixel spacing of a frame `height_px` rows tall under this profile's depth."""
        return default_mm if self.depth_mm is None else self.depth_mm / height_px

    def dicom_identity(self) -> dict[str, str | float]:
        """Keyword arguments of `write_dicom` that name this scanner."""
        return {"manufacturer": self.manufacturer, "model_name": self.model_name,
                "institution_name": self.institution_name, "transducer": self.transducer,
                "frequency_mhz": self.frequency_mhz}


PHANTOM_SCANNER = ScannerProfile()

# Two simulated sites. Site A: a high-frequency probe with crisp resolution and a bright, contrasty preset.
# Site B: a lower-frequency probe (coarser speckle, blurrier edges), a darker preset with a narrower dynamic
# range, a deeper field and more noise. Both keep the nerve and its CTS signs visible.
SITE_A_LOGIQ = ScannerProfile(
    name="site_a_logiq", manufacturer="GE Healthcare", model_name="LOGIQ E10",
    institution_name="Phantom University Hospital", transducer="L8-18i", frequency_mhz=15.0,
    gain_db=1.5, dynamic_range_db=72.0, speckle_lateral_mm=0.12, speckle_axial_mm=0.08,
    psf_lateral_mm=0.04, psf_axial_mm=0.02, noise_floor=0.008, tgc_db_per_mm=0.0,
)
SITE_B_CX50 = ScannerProfile(
    name="site_b_cx50", manufacturer="Philips Medical Systems", model_name="CX50",
    institution_name="Phantom District Clinic", transducer="L12-3", frequency_mhz=10.0,
    gain_db=-1.5, dynamic_range_db=66.0, speckle_lateral_mm=0.17, speckle_axial_mm=0.12,
    psf_lateral_mm=0.10, psf_axial_mm=0.06, depth_mm=35.0, noise_floor=0.02, tgc_db_per_mm=0.06,
)

SCANNER_PROFILES: dict[str, ScannerProfile] = {p.name: p for p in (PHANTOM_SCANNER, SITE_A_LOGIQ, SITE_B_CX50)}


def scanner_profile(name: str) -> ScannerProfile:
    """The named profile; a clear error lists the known names."""
    try:
        return SCANNER_PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown scanner profile {name!r}; choose one of {sorted(SCANNER_PROFILES)}") from None

