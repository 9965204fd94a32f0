"""Benchmark: server time and database queries of each dashboard at study scale against a tenth of it.

Run: .venv/bin/python bench/bench_dashboards.py   (needs the PostgreSQL of DATABASE_URL; it creates and then
drops its own throwaway database, `bench_dashboards_<name>`). Study scale is 100 hands × 100 frames with
two annotators confirming every frame and outlining every hand, and an experiment of three models tested on
40% of the hands; the tenth is 10 such hands. The data are written with bulk_create
(tests/factories.bulk_cohort) and the runs' stored results computed by mlworker.stats from drawn
probabilities (tests/factories.locked_split_with_experiment), not the phantom and no training: the pages
read rows, not pixels.
Server time is the Django test client's request in this process (no network), the median of `--repeat`
requests after one warm-up (the experiment page is the experiment dashboard; the study report's
generation is timed by bench/bench_reports.py). Goals: pages under 300 ms at study scale, the same number
of queries at both scales.
"""

from __future__ import annotations

import argparse
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

PAGES = {"cohort": "/dashboards/cohort/", "annotation": "/dashboards/annotation/", "agreement": "/clips/agreement/",
         "experiment": "/experiments/{experiment}/"}
MODELS = ("squeezenet1_1", "mobilenetv2_100", "efficientnet_b0")
STUDY_HANDS, FRAMES, GOAL_MS = 100, 100, 300.0


def measure(client: Client, url: str, repeat: int) -> tuple[float, int]:
    """Median server time (ms) and the number of queries of one request."""
    client.get(url)  # warm-up: template loading, first connection
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    n_queries = len(queries)  # now: the captured list is a slice of a log that later requests reset
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        client.get(url)
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times), n_queries


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--hands", type=int, default=STUDY_HANDS, help="study scale (hands)")
    parser.add_argument("--frames", type=int, default=FRAMES, help="frames per clip")
    args = parser.parse_args()

    from tests.factories import UserFactory, bulk_cohort, locked_split_with_experiment

    with throwaway_study("dashboards"):
        pi = UserFactory(username="bench-pi", role="pi")
        annotators = [UserFactory(username=f"bench-ann{i}", role="annotator") for i in range(2)]
        client = Client()
        client.force_login(pi)
        tenth = max(args.hands // 10, 2)
        results = {}
        for label, n_new, prefix in (("tenth", tenth, "TENTH"), ("study", args.hands - tenth, "STUDY")):
            start = time.perf_counter()
            bulk_cohort(n_new, annotators=annotators, frames_per_clip=args.frames, prefix=prefix, seed=len(results))
            # Each scale has a locked split and an experiment of three models testing 40% of its hands, so the
            # two differ in hands and frames only.
            n_hands = tenth if label == "tenth" else args.hands
            _split, experiment, _cut = locked_split_with_experiment(name=label, test_per_group=n_hands // 5,
                                                                    models=MODELS)
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")  # planner statistics, as autovacuum keeps them on a running database
            built = time.perf_counter() - start
            results[label] = {page: measure(client, url.format(experiment=experiment.pk), args.repeat)
                              for page, url in PAGES.items()}
            print(f"built {label} scale ({tenth if label == 'tenth' else args.hands} hands × {args.frames} frames, "
                  f"{len(annotators)} annotators) in {built:.1f} s")
        print(f"\n{'page':<12} {'tenth ms':>9} {'study ms':>9} {'ratio':>6} "
              f"{'queries tenth':>14} {'queries study':>14}")
        ok = True
        for page in PAGES:
            (t_small, q_small), (t_large, q_large) = results["tenth"][page], results["study"][page]
            print(f"{page:<12} {t_small:>9.1f} {t_large:>9.1f} {t_large / t_small:>6.2f} {q_small:>14} {q_large:>14}")
            ok &= t_large < GOAL_MS and q_small == q_large
        print(f"\ngoal: pages under {GOAL_MS:.0f} ms at study scale, the same queries at both scales: "
              f"{'met' if ok else 'NOT met'}")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
