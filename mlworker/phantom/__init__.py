"""Synthetic wrist-ultrasound phantom: seeded median-nerve clips, file writers and matching clinical values.

Names resolve on first use (PEP 562): generating clips needs numpy and OpenCV only, so a machine without pydicom
(the GPU benchmark host) can still make phantom frames; the writers (`write_dicom`, `write_video`,
`ground_truth`) load it when asked for.
"""

from __future__ import annotations

from mlworker.lazy import lazy_exports

# Public name -> the module of this package that defines it.
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("CSA_REFERENCE_MM2", "GROUPS", "NerveParams", "PhantomClip", "PhantomConfig", "generate_clip",
                     "polygon_area", "sample_nerve_params"), "clip"),
    **dict.fromkeys(("sample_eps", "sample_manual_csa", "sample_participant"), "cohort"),
    **dict.fromkeys(("PHANTOM_SCANNER", "SCANNER_PROFILES", "SITE_A_LOGIQ", "SITE_B_CX50", "ScannerProfile",
                     "scanner_profile"), "scanners"),
    **dict.fromkeys(("ground_truth", "write_dicom", "write_video"), "writers"),
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
