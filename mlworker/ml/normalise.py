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


def _stats(images: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Mean and SD of the pixels of the crops in `mask`, exact, from their 256-bin histogram.

    Counted a block of crops at a time: bincount widens its input to 64-bit, which whole (10,000 crops of
    224 px) would take gigabytes and most of the time.
    """
    indices = np.flatnonzero(mask)
    per_crop = max(1, int(np.prod(images.shape[1:])))
    block = max(1, (1 << 22) // per_crop)
    counts = np.zeros(256, dtype=np.int64)
    for start in range(0, indices.size, block):
        counts += np.bincount(images[indices[start:start + block]].ravel(), minlength=256)
    levels = np.arange(256, dtype=np.float64)
    n = float(counts.sum())
    mean = float(counts @ levels / n)
    variance = float(counts @ (levels - mean) ** 2 / n)
    return mean, max(variance ** 0.5, _MIN_SD)


def site_statistics(images: np.ndarray, sites: Sequence[str], fitting: np.ndarray) -> dict:
    """Reference (pooled fitting crops) and per-site mean/SD, each site's from its fitting crops, else its own.

    `images` (N, ...) uint8; `sites` the site of each crop ("" when unknown); `fitting` a boolean
    mask (N,) of the crops the model is fitted on.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"Crops are normalised as uint8; got {images.dtype}.")
    sites = np.asarray(list(sites), dtype=object)
    fitting = np.asarray(fitting, dtype=bool)
    if sites.shape != (images.shape[0],) or fitting.shape != (images.shape[0],):
        raise ValueError(f"sites and fitting need one entry per crop ({images.shape[0]}), got {sites.shape} and "
                         f"{fitting.shape}.")
    if not fitting.any():
        raise ValueError("No fitting crop: the reference statistics come from the crops the model is fitted on.")
    mean, sd = _stats(images, fitting)
    out = {"reference": {"mean": mean, "sd": sd, "n": int(fitting.sum())}, "sites": {}}
    for site in sorted(set(sites.tolist())):
        own = sites == site
        from_fitting = own & fitting
        chosen = from_fitting if from_fitting.any() else own
        site_mean, site_sd = _stats(images, chosen)
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
    record = site_statistics(images, sites, fitting)
    reference = record["reference"]
    sites = np.asarray(list(sites), dtype=object)
    out = np.empty_like(images)
    for site, stats in record["sites"].items():
        own = sites == site
        out[own] = _table(stats, reference)[images[own]]
    return out, {"method": method, **record}


def _table(stats: dict, reference: dict) -> np.ndarray:
    """The map of a site's grey levels: a uint8 image is looked up in 256 entries, not computed pixel by pixel."""
    levels = np.arange(256, dtype=np.float64)
    return np.clip(np.rint((levels - stats["mean"]) * (reference["sd"] / stats["sd"]) + reference["mean"]),
                   0, 255).astype(np.uint8)


def normalise_like(images: np.ndarray, record: dict, *, site: str) -> np.ndarray:
    """New crops of one site normalised as a trained run's were (`record`: the run's normalisation record).

    A site the run saw keeps the statistics it was trained and tested with; another site's crops are
    standardised by their own, as an unseen site's were. Crops of a run trained without it come back unchanged.
    """
    if record.get("method", NONE) == NONE:
        return images
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"Crops are normalised as uint8; got {images.dtype}.")
    stats = record["sites"].get(site)
    if stats is None:
        mean, sd = _stats(images, np.ones(images.shape[0], dtype=bool))
        stats = {"mean": mean, "sd": sd}
    return _table(stats, record["reference"])[images]


def normalise_sites_like(images: np.ndarray, record: dict | None, sites: Sequence[str]) -> np.ndarray:
    """normalise_like for crops of several sites (`sites[i]` is crop i's), each site by its own table."""
    if not record or record.get("method", NONE) == NONE:
        return images
    images = np.asarray(images)
    if len(sites) != images.shape[0]:
        raise ValueError(f"{len(sites)} sites for {images.shape[0]} crops.")
    out = np.empty_like(images)
    sites = np.asarray(sites, dtype=object)
    for site in dict.fromkeys(sites.tolist()):
        chosen = sites == site
        out[chosen] = normalise_like(images[chosen], record, site=site)
    return out
