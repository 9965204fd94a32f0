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
from mlworker.phantom.writers import ground_truth, write_dicom, write_video

__all__ = [
    "CSA_REFERENCE_MM2",
    "GROUPS",
    "NerveParams",
    "PhantomClip",
    "PhantomConfig",
    "generate_clip",
    "ground_truth",
    "polygon_area",
    "sample_eps",
    "sample_manual_csa",
    "sample_nerve_params",
    "sample_participant",
    "write_dicom",
    "write_video",
]
