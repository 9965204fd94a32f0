"""External splits planned directly (no database): train on chosen sites, test on the others."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studyapp.experiments.splitting import Candidate, plan_external_split


def two_site_cohort(n_per_site=20):
    """Participants alternately control/CTS, one or two hands each, all clips of a participant at one site."""
    candidates, domains, hand = [], {}, 0
    for site in ("A", "B"):
        for p in range(n_per_site):
            participant = (1000 if site == "B" else 0) + p
            for _ in range(2 if p % 4 == 0 else 1):
                hand += 1
                candidates.append(Candidate(hand, participant, "cts" if p % 2 else "control"))
                domains[hand] = (site,)
    return candidates, domains


def test_trains_and_tests_internally_on_the_chosen_site_and_externally_on_the_other():
    candidates, domains = two_site_cohort()
    plan = plan_external_split(candidates, hand_domains=domains, train_domains=["A"], domain="site", seed=3,
                               test_per_group=3)
    assert {domains[h][0] for h in plan.train + plan.test} == {"A"}
    assert {domains[h][0] for h in plan.external} == {"B"}
    assert len(plan.external) == sum(d == ("B",) for d in domains.values())
    groups = {c.hand_id: c.group for c in candidates}
    assert plan.counts(groups)["test"] == {"control": 3, "cts": 3}
    assert not plan.left_out
    again = plan_external_split(candidates, hand_domains=domains, train_domains=["A"], domain="site", seed=3,
                                test_per_group=3)
    assert again == plan


def test_a_participant_spanning_a_training_and_another_site_is_left_out_whole():
    candidates = [Candidate(1, 1, "control"), Candidate(2, 1, "control"), Candidate(3, 2, "cts"),
                  Candidate(4, 3, "cts"), Candidate(5, 4, "control")]
    domains = {1: ("A",), 2: ("B",), 3: ("A",), 4: ("B",), 5: ("A", "B")}
    plan = plan_external_split(candidates, hand_domains=domains, train_domains=["A"], domain="site", seed=0,
                               test_per_group=1)
    reasons = dict(plan.left_out)
    assert set(reasons) == {1, 2, 5}
    assert "never on both sides" in reasons[1] and "training site(s) A and other site(s) B" in reasons[5]
    assert plan.external == (4,)


def test_a_hand_without_a_site_is_left_out_with_the_reason():
    candidates = [Candidate(1, 1, "control"), Candidate(2, 2, "cts"), Candidate(3, 3, "cts")]
    domains = {1: ("A",), 2: ("", "A"), 3: ("B",)}
    plan = plan_external_split(candidates, hand_domains=domains, train_domains=["A"], domain="scanner", seed=0,
                               test_per_group=1)
    assert dict(plan.left_out) == {2: "no scanner recorded for its clip(s): an external split needs it"}
    assert plan.external == (3,)


def test_needs_a_training_domain_and_hands_outside_it():
    candidates, domains = two_site_cohort(4)
    with pytest.raises(ValueError, match="at least one site"):
        plan_external_split(candidates, hand_domains=domains, train_domains=[], domain="site", seed=0,
                            test_per_group=1)
    with pytest.raises(ValueError, match="No eligible hand is outside"):
        plan_external_split(candidates, hand_domains=domains, train_domains=["A", "B"], domain="site", seed=0,
                            test_per_group=1)


@st.composite
def cohorts(draw):
    sites = ["A", "B", "C", "D"]
    n_participants = draw(st.integers(2, 25))
    candidates, domains, hand = [], {}, 0
    for participant in range(n_participants):
        group = draw(st.sampled_from(["control", "cts"]))
        for _ in range(draw(st.integers(1, 2))):
            hand += 1
            candidates.append(Candidate(hand, participant, group))
            domains[hand] = tuple(draw(st.lists(st.sampled_from(sites + [""]), min_size=1, max_size=3)))
    train = draw(st.lists(st.sampled_from(sites), min_size=1, max_size=3, unique=True))
    return candidates, domains, train


@settings(max_examples=300, deadline=None)
@given(cohorts(), st.integers(0, 50), st.integers(1, 4))
def test_no_hand_of_a_test_site_is_ever_in_training_and_no_participant_is_on_both_sides(cohort, seed, per_group):
    candidates, domains, train_domains = cohort
    try:
        plan = plan_external_split(candidates, hand_domains=domains, train_domains=train_domains, domain="site",
                                   seed=seed, test_per_group=per_group)
    except ValueError as error:
        assert "No eligible hand is outside" in str(error)
        by_participant = {}
        for c in candidates:
            if "" not in domains[c.hand_id]:
                by_participant.setdefault(c.participant_id, set()).update(domains[c.hand_id])
        assert all(d & set(train_domains) for d in by_participant.values())
        return
    participant = {c.hand_id: c.participant_id for c in candidates}
    internal = plan.train + plan.test + plan.unused
    for hand in internal:
        assert domains[hand] and set(domains[hand]) <= set(train_domains)
    for hand in plan.external:
        assert "" not in domains[hand] and not set(domains[hand]) & set(train_domains)
    assert not {participant[h] for h in internal} & {participant[h] for h in plan.external}
    assert not {participant[h] for h in plan.train} & {participant[h] for h in plan.test}
    everything = sorted(internal + plan.external + tuple(h for h, _ in plan.left_out))
    assert everything == sorted(c.hand_id for c in candidates)
