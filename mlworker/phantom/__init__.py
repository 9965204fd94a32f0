"""Synthetic wrist-ultrasound phantom: seeded median-nerve clips, file writers and matching clinical values."""

from mlworker.phantom.clip import (
    CSA_REFERENCE_MM2,
    GROUPS,
    NerveParams,
    PhantomClip,
    PhantomConfig,
    generate_clip,
    polygon_area,
    sample_nerve_params,
)
from mlworker.phantom.cohort import sample_eps, sample_manual_csa, sample_participant
from mlworker.phantom.scanners import (
    PHANTOM_SCANNER,
    SCANNER_PROFILES,
    SITE_A_LOGIQ,
    SITE_B_CX50,
    ScannerProfile,
    scanner_profile,
)
from mlworker.phantom.writers import ground_truth, write_dicom, write_video

__all__ = [
    "CSA_REFERENCE_MM2",
    "GROUPS",
    "NerveParams",
    "PHANTOM_SCANNER",
    "PhantomClip",
    "PhantomConfig",
    "SCANNER_PROFILES",
    "SITE_A_LOGIQ",
    "SITE_B_CX50",
    "ScannerProfile",
    "generate_clip",
    "ground_truth",
    "polygon_area",
    "sample_eps",
    "sample_manual_csa",
    "sample_nerve_params",
    "sample_participant",
    "scanner_profile",
    "write_dicom",
    "write_video",
]
