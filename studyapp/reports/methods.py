"""The report's methods paragraph, written from the stored protocol, split and run settings.

No Django here: plain values in, sentences out, so the text states exactly what was stored.
"""

from __future__ import annotations

from mlworker.ml.constants import DEGREES, FLIP_P, SCALE, SHEAR, TRANSLATE


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def methods_paragraphs(*, protocol: dict, split: dict, frames: dict, runs: list[dict], evaluation: dict) -> list[str]:
    """Sentences of the methods section.

    protocol: dml_threshold_ms, sncv_threshold_m_s, frames_per_clip, crop_size_mm, csa_method.
    split: name, version, seed, counts {train|test[|external]: {control, cts}}, manifest_sha256, and for an
    external split kind="external", domain ("site" | "scanner") and train_domains.
    frames: {train, test[, external]} crops in the manifest.  runs: [{label, config, device, random_init}].
    evaluation: threshold, n_boot, validation_fraction.
    """
    c = split["counts"]
    train_hands, test_hands = c["train"]["control"] + c["train"]["cts"], c["test"]["control"] + c["test"]["cts"]
    paragraphs = [
        f"Hands were staged from nerve conduction after Padua's grading as used by Shinohara et al. (2022): "
        f"stage 1 (normal, control) with a distal motor latency (DML) under {protocol['dml_threshold_ms']:g} ms and a "
        f"sensory nerve conduction velocity (SNCV) of at least {protocol['sncv_threshold_m_s']:g} m/s; stages 2–5 "
        f"(CTS) with a DML of {protocol['dml_threshold_ms']:g} ms or more, by SNCV and absent responses; healthy "
        f"volunteers without EPS are controls. "
        f"Each hand's ultrasound clip was sampled at up to {protocol['frames_per_clip']} frames; on every frame an "
        f"annotator confirmed a region of interest around the median nerve, cropped at "
        f"{protocol['crop_size_mm']:g} mm. "
        f"The hands were split at the level of the participant (both hands of a participant in the same subset) "
        f"into training ({train_hands} hands: {c['train']['control']} control, {c['train']['cts']} CTS; "
        f"{frames['train']} crops) and testing ({test_hands} hands: {c['test']['control']} control, "
        f"{c['test']['cts']} CTS; {frames['test']} crops), split {split['name']} version {split['version']} "
        f"(seed {split['seed']}), frozen by a manifest with SHA-256 {split['manifest_sha256']}.",
    ]
    if split.get("kind") == "external":
        e = c.get("external", {"control": 0, "cts": 0})
        paragraphs[-1] += (
            f" The split was external by {split['domain']}: training and internal testing used only hands scanned "
            f"at {_join(split['train_domains'])}; every eligible hand of the other {split['domain']}s formed an "
            f"external test set ({e['control'] + e['cts']} hands: {e['control']} control, {e['cts']} CTS; "
            f"{frames.get('external', 0)} crops), evaluated at the threshold of the internal evaluation, and no "
            f"participant had hands on both sides.")
    if runs:
        # The label already says "(random init)" for a model trained without ImageNet weights.
        models = _join([r["label"] if r["random_init"] else f"{r['label']} (ImageNet weights)" for r in runs])
        configs = [r["config"] for r in runs]
        first = configs[0]
        same = all({k: cfg.get(k) for k in ("epochs", "batch_size", "lr", "optimizer", "input_size", "augment",
                                            "early_stopping_patience", "seed")} ==
                   {k: first.get(k) for k in ("epochs", "batch_size", "lr", "optimizer", "input_size", "augment",
                                              "early_stopping_patience", "seed")} for cfg in configs)
        patience = first.get("early_stopping_patience")
        stopping = (f"stopping early after {patience} epochs without a lower validation loss"
                    if patience else "without early stopping")
        augment = (f"with random flips (p = {FLIP_P:g}), rotations (±{DEGREES:g}°), scaling ({SCALE[0]:g}–{SCALE[1]:g}), "
                   f"translations (±{TRANSLATE[0]:.0%} × ±{TRANSLATE[1]:.0%}) and shears (±{SHEAR:g}°)"
                   if first.get("augment") else "without augmentation")
        devices = sorted({r["device"] for r in runs if r["device"]})
        seeds = sorted({cfg.get("seed") for cfg in configs})
        training = (f"{_plural(len(runs), 'model')} {'was' if len(runs) == 1 else 'were'} trained: {models}. "
                    f"Crops were resized to "
                    f"{first.get('input_size')}×{first.get('input_size')} pixels and trained {augment}, for up to "
                    f"{first.get('epochs')} epochs ({first.get('optimizer')}, learning rate {first.get('lr'):g}, batch "
                    f"size {first.get('batch_size')}), {stopping}; "
                    f"{evaluation['validation_fraction']:.0%} of the training hands were held out for validation, and "
                    f"the weights of the epoch with the lowest validation loss were kept. Seed"
                    f"{'s' if len(seeds) > 1 else ''} {_join([str(s) for s in seeds])}; trained on "
                    f"{_join(devices) if devices else 'an unrecorded device'}.")
        if not same:
            training += " The models' settings differ; each run's settings are listed under provenance."
        paragraphs.append(training)
    paragraphs.append(
        f"Each model gave a CTS probability per test frame; a hand's probability is the mean of its frames'. "
        f"Results are reported at frame level and at hand level, each labelled, with a threshold of "
        f"{evaluation['threshold']:g}. Frame-level 95% intervals come from {evaluation['n_boot']} stratified "
        f"bootstrap replicates resampling frames (as the reference study did) and resampling whole hands; the "
        f"frame-level AUC interval and model comparisons use Obuchowski's clustered variance with hands as "
        f"clusters. Hand-level intervals resample hands; hand-level AUCs are compared by DeLong's test. "
        f"Sensitivity per EPS stage and specificity of controls carry Wilson 95% intervals. The manual-CSA "
        f"baseline ({protocol['csa_method']} CSA at the carpal tunnel inlet) uses the cut-off maximising "
        f"Youden's J on the training hands, applied to the same test hands.")
    return paragraphs
