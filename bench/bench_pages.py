"""Benchmark: server time and database queries of every PI page and API read at study scale against a tenth of it.

Run: .venv/bin/python bench/bench_pages.py   (needs the PostgreSQL of DATABASE_URL; it creates and then drops its
own throwaway database, `bench_pages_<name>`). Study scale is 100 hands × 100 frames with two annotators
confirming every frame, a locked split testing 40% of the hands, an experiment of three models and each model
explained by Grad-CAM on 5 frames per test hand (as the demo study does); the tenth is 10 such hands. The data
are written with bulk_create (tests/factories.bulk_cohort, locked_split_with_experiment,
tests/experiment_factories.explain_run): the pages read rows, not pixels.
Server time is the Django test client's request in this process (no network), the median of `--repeat`
requests after one warm-up; "split create" is a POST to /api/splits/ (a new split each time). A locked split
is checked by a fingerprint of its inputs; the cost of that beside rebuilding the manifest (what a check
falls back to after a change) is printed too. The dashboards
of bench/bench_dashboards.py (cohort, annotation, agreement) are timed there. Goals: under 300 ms at study
scale, the same number of queries at both scales.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studyapp.settings.test")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from harness import throwaway_study  # noqa: E402  (bench/, beside this script)

# (name, method, url); {split}, {experiment}, {run} are the scale's own.
PAGES = [
    ("experiments list", "get", "/experiments/"),
    ("split page", "get", "/experiments/splits/{split}/"),
    ("split check", "get", "/api/splits/{split}/check/"),
    ("split create", "post", "/api/splits/"),
    ("api splits", "get", "/api/splits/"),
    ("api split", "get", "/api/splits/{split}/"),
    ("api experiments", "get", "/api/experiments/"),
    ("api experiment", "get", "/api/experiments/{experiment}/"),
    ("api models", "get", "/api/models/"),
    ("api model", "get", "/api/models/{run}/"),
    ("api predictions", "get", "/api/models/{run}/predictions/?page=2&page_size=100"),
    ("experiment page", "get", "/experiments/{experiment}/"),
    ("gallery", "get", "/explanations/experiments/{experiment}/"),
]
MODELS = ("squeezenet1_1", "mobilenetv2_100", "efficientnet_b0")
STUDY_HANDS, FRAMES, GOAL_MS, EXPLAINED_PER_HAND = 100, 100, 300.0, 5
names = itertools.count()
create_per_group = 1  # test hands per group of the splits "split create" makes (set per scale)


def request(client: Client, method: str, url: str):
    if method == "post":
        return client.post(url, {"name": f"bench-{next(names)}", "test_per_group": create_per_group}, content_type="application/json")
    return client.get(url)


def measure(client: Client, method: str, url: str, repeat: int) -> tuple[float, int, int]:
    """Median server time (ms), the number of queries and the response's size in bytes of one request."""
    request(client, method, url)  # warm-up: template loading, first connection
    with CaptureQueriesContext(connection) as queries:
        response = request(client, method, url)
    assert response.status_code in (200, 201), (url, response.status_code, response.content[:300])
    n_queries = len(queries)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        request(client, method, url)
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times), n_queries, len(response.content)


def check_costs(split, repeat: int) -> tuple[float, float]:
    """Median ms of a split's input fingerprint (what a check costs now) and of rebuilding and hashing its
    manifest from the data (what every check cost before fingerprints, and still costs after a change)."""
    from studyapp.experiments import datasets, services

    members = {split.pk: [(m.hand_id, m.subset) for m in split.members.all()]}
    hands = [(m.hand, m.subset) for m in split.members.select_related("hand")]

    def median_ms(job) -> float:
        job()
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            job()
            times.append(1000 * (time.perf_counter() - start))
        return statistics.median(times)

    return (median_ms(lambda: services._inputs_fingerprints(members)),
            median_ms(lambda: datasets.manifest_hash(datasets.manifest_for(hands))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--hands", type=int, default=STUDY_HANDS, help="study scale (hands)")
    parser.add_argument("--frames", type=int, default=FRAMES, help="frames per clip")
    parser.add_argument("--profile", metavar="PAGE", help="also print cProfile's top functions of PAGE at study scale")
    args = parser.parse_args()

    from tests.experiment_factories import explain_run
    from tests.factories import UserFactory, bulk_cohort, locked_split_with_experiment

    with throwaway_study("pages"):
        pi = UserFactory(username="bench-pi", role="pi")
        annotators = [UserFactory(username=f"bench-ann{i}", role="annotator") for i in range(2)]
        client = Client()
        client.force_login(pi)
        tenth = max(args.hands // 10, 2)
        results, checks = {}, {}
        for label, n_hands, prefix in (("tenth", tenth, "TENTH"), ("study", args.hands, "STUDY")):
            start = time.perf_counter()
            # The study scale adds hands to the tenth's, so the cohort then holds `args.hands` hands.
            bulk_cohort(n_hands - len(results) * tenth, annotators=annotators, frames_per_clip=args.frames,
                        prefix=prefix, seed=len(results))
            global create_per_group
            create_per_group = max(n_hands // 5, 1)
            split, experiment, _cut = locked_split_with_experiment(name=label, test_per_group=create_per_group,
                                                                   models=MODELS)
            for run in experiment.runs.all():
                explain_run(run, method="gradcam", images=False, frames_per_hand=EXPLAINED_PER_HAND)
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")  # planner statistics, as autovacuum keeps them on a running database
            built = time.perf_counter() - start
            ids = {"split": split.pk, "experiment": experiment.pk, "run": experiment.runs.first().pk}
            results[label] = {name: measure(client, method, url.format(**ids), args.repeat)
                              for name, method, url in PAGES}
            if args.profile and label == "study":
                import cProfile
                import pstats

                method, url = next((m, u) for n, m, u in PAGES if n == args.profile)
                profile = cProfile.Profile()
                profile.runcall(request, client, method, url.format(**ids))
                pstats.Stats(profile).sort_stats("tottime").print_stats(25)
            checks[label] = check_costs(split, args.repeat)
            print(f"built {label} scale ({n_hands} hands × {args.frames} frames, {len(annotators)} annotators, "
                  f"{len(MODELS)} models) in {built:.1f} s")
        print(f"\n{'page':<17} {'tenth ms':>9} {'study ms':>9} {'ratio':>6} {'queries tenth':>14} "
              f"{'queries study':>14} {'study KB':>9}")
        ok = True
        for name, _method, _url in PAGES:
            (t_small, q_small, _), (t_large, q_large, size) = results["tenth"][name], results["study"][name]
            flag = "" if t_large < GOAL_MS and q_small == q_large else "  <- goal not met"
            print(f"{name:<17} {t_small:>9.1f} {t_large:>9.1f} {t_large / t_small:>6.2f} {q_small:>14} "
                  f"{q_large:>14} {size / 1024:>9.1f}{flag}")
            ok &= not flag
        print("\nchecking a locked split: the fingerprint of its inputs (one query) against rebuilding its manifest")
        for label, (fingerprint_ms, rebuild_ms) in checks.items():
            print(f"  {label:<6} fingerprint {fingerprint_ms:7.1f} ms   rebuild and hash {rebuild_ms:7.1f} ms   "
                  f"ratio {rebuild_ms / fingerprint_ms:5.1f}")
        print(f"\ngoal: every page under {GOAL_MS:.0f} ms at study scale, the same queries at both scales: "
              f"{'met' if ok else 'NOT met'}")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
