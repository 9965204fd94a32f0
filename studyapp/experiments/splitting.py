"""Hand-level train/test splits, stratified by group and grouped by participant (no Django imports).

Both hands of a participant always land on the same side, so no participant's frames are ever seen in
training and in testing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

GROUPS = ("control", "cts")


@dataclass(frozen=True)
class Candidate:
    hand_id: int
    participant_id: int
    group: str  # 'control' | 'cts'


@dataclass(frozen=True)
class SplitPlan:
    train: tuple[int, ...]
    test: tuple[int, ...]
    unused: tuple[int, ...]  # eligible, but beyond the requested counts

    def counts(self, groups: dict[int, str]) -> dict[str, dict[str, int]]:
        return {subset: {g: sum(groups[h] == g for h in hands) for g in GROUPS}
                for subset, hands in (("train", self.train), ("test", self.test), ("unused", self.unused))}


def _units(candidates: list[Candidate], rng: np.random.Generator) -> list[list[Candidate]]:
    by_participant: dict[int, list[Candidate]] = defaultdict(list)
    for candidate in sorted(candidates, key=lambda c: c.hand_id):
        by_participant[candidate.participant_id].append(candidate)
    units = [by_participant[p] for p in sorted(by_participant)]
    return [units[i] for i in rng.permutation(len(units))]


def _fill(units, targets: dict[str, int]) -> tuple[list[list[Candidate]], list[list[Candidate]]]:
    """Take whole participants in order while no group would pass its target; return (taken, rest)."""
    taken, rest, counts = [], [], dict.fromkeys(GROUPS, 0)
    for unit in units:
        add = dict.fromkeys(GROUPS, 0)
        for candidate in unit:
            add[candidate.group] += 1
        if all(counts[g] + add[g] <= targets[g] for g in GROUPS) and any(counts[g] < targets[g] for g in GROUPS
                                                                          if add[g]):
            taken.append(unit)
            for g in GROUPS:
                counts[g] += add[g]
        else:
            rest.append(unit)
    return taken, rest


def plan_split(candidates: list[Candidate], *, seed: int, test_per_group: int | None = None,
               test_fraction: float | None = None, train_per_group: int | None = None) -> SplitPlan:
    """Assign eligible hands to test and train, stratified by group, whole participants at a time.

    The test set is filled first to `test_per_group` hands per group (or `test_fraction` of each group);
    training takes the remaining hands, up to `train_per_group` per group when given.
    """
    if (test_per_group is None) == (test_fraction is None):
        raise ValueError("Give either the number of test hands per group or the test fraction, not both.")
    if test_fraction is not None and not 0 < test_fraction < 1:
        raise ValueError(f"The test fraction must be between 0 and 1; {test_fraction} was given.")
    if any(c.group not in GROUPS for c in candidates):
        raise ValueError("Only control and CTS hands can be split.")
    per_group = {g: sum(c.group == g for c in candidates) for g in GROUPS}
    if test_fraction is not None:
        test_targets = {g: int(round(per_group[g] * test_fraction)) for g in GROUPS}
    else:
        test_targets = dict.fromkeys(GROUPS, test_per_group)
    rng = np.random.default_rng(seed)
    test_units, rest = _fill(_units(candidates, rng), test_targets)
    train_targets = {g: per_group[g] if train_per_group is None else train_per_group for g in GROUPS}
    train_units, unused_units = _fill(rest, train_targets)
    flat = lambda units: tuple(sorted(c.hand_id for unit in units for c in unit))  # noqa: E731
    return SplitPlan(train=flat(train_units), test=flat(test_units), unused=flat(unused_units))


class NoValidationSplit(ValueError):
    """The training hands cannot give a validation set and a fitting set that both hold each group."""


def validation_hands(candidates: list[Candidate], *, fraction: float, seed: int) -> tuple[int, ...]:
    """Training hands held out for model selection: a stratified, participant-grouped share of training.

    Both groups are always in the validation hands and in the hands left to fit on: a validation set of one
    group has no AUC, and a model never shown a group learns nothing. Raises `NoValidationSplit` when whole
    participants cannot give that.
    """
    if not 0 < fraction < 1:
        raise ValueError("The validation fraction must be between 0 and 1.")
    per_group = {g: sum(c.group == g for c in candidates) for g in GROUPS}
    for g in GROUPS:
        if per_group[g] < 2:
            raise NoValidationSplit(
                f"The training hands hold {per_group[g]} {g} hand(s); fitting and validation need at least one "
                f"each. Make a split with more training hands per group.")
    targets = {g: min(max(1, int(round(per_group[g] * fraction))), per_group[g] - 1) for g in GROUPS}
    taken, rest = _fill(_units(candidates, np.random.default_rng(seed)), targets)
    groups_of = lambda units: {c.group for unit in units for c in unit}  # noqa: E731
    for g in GROUPS:
        if g in groups_of(taken):
            continue
        # Targets of one hand cannot take a participant giving two: take the first (in seeded order) whose
        # hands leave every group in the fitting set.
        unit = next((u for u in rest if g in groups_of([u]) and groups_of([r for r in rest if r is not u])
                     == set(GROUPS)), None)
        if unit is None:
            raise NoValidationSplit(
                f"No participant's {g} hands can be held out for validation while {g} hands stay to fit on "
                f"({per_group[g]} {g} training hands from too few participants). Make a split with more "
                "training hands per group.")
        taken.append(unit)
        rest = [r for r in rest if r is not unit]
    if groups_of(rest) != set(GROUPS):
        raise NoValidationSplit("Holding out validation hands would leave one group with no hand to fit on. "
                                "Make a split with more training hands per group.")
    return tuple(sorted(c.hand_id for unit in taken for c in unit))


def permuted_labels(hand_labels: dict[int, int], *, seed: int) -> dict[int, int]:
    """The same labels shuffled across hands (a negative control): the class balance is kept, the link between
    a hand's images and its diagnosis is broken. Deterministic in `seed`; hands are taken in id order."""
    hands = sorted(hand_labels)
    shuffled = np.random.default_rng(seed).permutation([hand_labels[h] for h in hands])
    return {h: int(label) for h, label in zip(hands, shuffled)}


# --- external validation: train on some sites (or scanners), test on the others ---------------------------

@dataclass(frozen=True)
class ExternalPlan:
    """An external split: `train`/`test`/`unused` from the training domains (as `plan_split`), `external` every
    eligible hand of the other domains, and the hands left out with the reason."""

    train: tuple[int, ...]
    test: tuple[int, ...]
    unused: tuple[int, ...]
    external: tuple[int, ...]
    left_out: tuple[tuple[int, str], ...]

    def counts(self, groups: dict[int, str]) -> dict[str, dict[str, int]]:
        return {subset: {g: sum(groups[h] == g for h in hands) for g in GROUPS}
                for subset, hands in (("train", self.train), ("test", self.test), ("unused", self.unused),
                                      ("external", self.external))}


def plan_external_split(candidates: list[Candidate], *, hand_domains: dict[int, tuple[str, ...]],
                        train_domains: list[str] | tuple[str, ...], domain: str, seed: int,
                        test_per_group: int | None = None, test_fraction: float | None = None,
                        train_per_group: int | None = None) -> ExternalPlan:
    """Train on the hands of `train_domains`, test internally on held-out hands of those, externally on the rest.

    `hand_domains` gives each hand's clips' domains ("" where a clip records none). A hand with a clip of no
    domain is left out; so is every hand of a participant whose clips come from a training domain and another
    one: a participant is never on both sides. The internal part is planned by `plan_split` (stratified, whole
    participants); the external subset takes every eligible hand of the other domains.
    """
    chosen = set(train_domains)
    if not chosen:
        raise ValueError(f"Choose at least one {domain} to train on.")
    left_out: list[tuple[int, str]] = []
    sited: list[Candidate] = []
    for candidate in candidates:
        domains = hand_domains.get(candidate.hand_id, ())
        if not domains or "" in domains:
            left_out.append((candidate.hand_id, f"no {domain} recorded for its clip(s): an external split needs it"))
        else:
            sited.append(candidate)
    by_participant: dict[int, set[str]] = defaultdict(set)
    for candidate in sited:
        by_participant[candidate.participant_id].update(hand_domains[candidate.hand_id])
    internal, external = [], []
    for candidate in sited:
        domains = by_participant[candidate.participant_id]
        if domains <= chosen:
            internal.append(candidate)
        elif not domains & chosen:
            external.append(candidate)
        else:
            left_out.append((candidate.hand_id, (
                f"the participant's clips come from training {domain}(s) {', '.join(sorted(domains & chosen))} "
                f"and other {domain}(s) {', '.join(sorted(domains - chosen))}: a participant is never on both "
                "sides of an external split")))
    if not external:
        raise ValueError(f"No eligible hand is outside the training {domain}(s) {', '.join(sorted(chosen))}: an "
                         f"external split needs hands of another {domain}.")
    plan = plan_split(internal, seed=seed, test_per_group=test_per_group, test_fraction=test_fraction,
                      train_per_group=train_per_group)
    return ExternalPlan(train=plan.train, test=plan.test, unused=plan.unused,
                        external=tuple(sorted(c.hand_id for c in external)), left_out=tuple(sorted(left_out)))
