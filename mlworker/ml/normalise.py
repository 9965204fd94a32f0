"""Per-site intensity normalisation of the decoded crops, a recorded training setting (TrainConfig.site_normalisation).

Scanners differ in gain, dynamic range and speckle, so a model trained at one site may read another's
brightness as disease. With `per_site_zscore`, each site's crops are standardised with that site's own mean
and SD and mapped onto the pooled fitting crops' mean and SD, so the images keep their uint8 range and the
rest of the pipeline (ImageNet normalisation, augmentation) is unchanged. A site with fitting crops is
standardised with the statistics of those crops only; a site without (an unseen external site) with the
statistics of all its own crops — pixels only, never labels. Pure numpy: no torch, no Django.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

NONE = "none"
PER_SITE_ZSCORE = "per_site_zscore"
SITE_NORMALISATIONS: tuple[str, ...] = (NONE, PER_SITE_ZSCORE)
# A site whose crops are (nearly) constant is shifted, not stretched.
_MIN_SD = 1e-3


def _stats(pixels: np.ndarray) -> tuple[float, float]:
    values = pixels.astype(np.float64, copy=False)
    return float(values.mean()), float(max(values.std(), _MIN_SD))


def site_statistics(images: np.ndarray, sites: Sequence[str], fitting: np.ndarray) -> dict:
    """Reference (pooled fitting crops) and per-site mean/SD, each site's from its fitting crops, else its own.

    `images` (N, ...) any numeric dtype; `sites` the site of each crop ("" when unknown); `fitting` a boolean
    mask (N,) of the crops the model is fitted on.
    """
    images = np.asarray(images)
    sites = np.asarray(list(sites), dtype=object)
    fitting = np.asarray(fitting, dtype=bool)
    if sites.shape != (images.shape[0],) or fitting.shape != (images.shape[0],):
        raise ValueError(f"sites and fitting need one entry per crop ({images.shape[0]}), got {sites.shape} and "
                         f"{fitting.shape}.")
    if not fitting.any():
        raise ValueError("No fitting crop: the reference statistics come from the crops the model is fitted on.")
    mean, sd = _stats(images[fitting])
    out = {"reference": {"mean": mean, "sd": sd, "n": int(fitting.sum())}, "sites": {}}
    for site in sorted(set(sites.tolist())):
        own = sites == site
        from_fitting = own & fitting
        chosen = from_fitting if from_fitting.any() else own
        site_mean, site_sd = _stats(images[chosen])
        out["sites"][site] = {"mean": site_mean, "sd": site_sd, "n": int(chosen.sum()),
                              "from": "fitting crops" if from_fitting.any() else "its own crops (no labels)"}
    return out


def normalise_by_site(images: np.ndarray, sites: Sequence[str], fitting: np.ndarray, *,
                      method: str = PER_SITE_ZSCORE) -> tuple[np.ndarray, dict]:
    """uint8 crops with each site's intensities mapped onto the reference statistics, and the record of it.

    (x - site mean) / site SD * reference SD + reference mean, rounded and clipped to 0..255. With "none" the
    crops come back unchanged.
    """
    if method not in SITE_NORMALISATIONS:
        raise ValueError(f"site_normalisation {method!r} is unknown; choose one of {', '.join(SITE_NORMALISATIONS)}.")
    if method == NONE:
        return images, {"method": NONE}
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"Crops are normalised as uint8; got {images.dtype}.")
    record = site_statistics(images, sites, fitting)
    reference = record["reference"]
    sites = np.asarray(list(sites), dtype=object)
    out = np.empty_like(images)
    for site, stats in record["sites"].items():
        own = sites == site
        scaled = (images[own].astype(np.float32) - stats["mean"]) * (reference["sd"] / stats["sd"]) + reference["mean"]
        out[own] = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return out, {"method": method, **record}
