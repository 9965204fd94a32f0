"""Benchmark: server time and queries of the experiment dashboard, and the time of a study report, at study
scale against a tenth of it.

Run: .venv/bin/python bench/bench_reports.py   (needs the PostgreSQL of DATABASE_URL; it creates and then drops
its own throwaway database, `bench_reports_<name>`). Study scale is 100 hands × 100 frames, two annotators
confirming every frame, and an experiment of three models tested on 40% of the hands (4,000 test frames);
the tenth is 10 such hands. The cohort is written with bulk_create (tests/factories.bulk_cohort) and the runs'
stored results computed by the platform's own evaluation from drawn probabilities
(tests/experiment_factories.evaluated_experiment): no training, the pages read rows, not pixels.
Dashboard: the experiment page (/experiments/<id>/) through the Django test client in this process, the
median of `--repeat` requests after one warm-up. Report: report_generate as the worker runs it (figures,
bundle, HTML, storage), twice, checking that the two bundles are identical.
Goals: the dashboard under 300 ms at study scale with the same number of queries at both scales.
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

STUDY_HANDS, FRAMES, GOAL_MS, TEST_FRACTION = 100, 100, 300.0, 0.4


def measure_page(client: Client, url: str, repeat: int) -> tuple[float, int]:
    """Median server time (ms) and the number of queries of one request."""
    client.get(url)  # warm-up: template loading, first connection
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    n_queries = len(queries)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        client.get(url)
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times), n_queries


def measure_report(experiment) -> tuple[float, int, int, bool]:
    """Seconds and queries of one report generation, the bundle's size, and whether a second is identical."""
    from studyapp.reports import services
    from studyapp.reports.models import StudyReport

    bundles, seconds, n_queries = [], [], 0
    for _ in range(2):
        report = StudyReport.objects.create(experiment=experiment, total=len(services.STEPS))
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            report = services.report_generate(report_id=report.pk)
            seconds.append(time.perf_counter() - start)
        n_queries = len(queries)
        with report.bundle.open("rb") as handle:
            bundles.append(handle.read())
    return min(seconds), n_queries, len(bundles[0]), bundles[0] == bundles[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--hands", type=int, default=STUDY_HANDS, help="study scale (hands)")
    parser.add_argument("--frames", type=int, default=FRAMES, help="frames per clip")
    parser.add_argument("--profile", action="store_true", help="print where the study-scale dashboard spends time")
    args = parser.parse_args()

    from tests.experiment_factories import evaluated_experiment
    from tests.factories import UserFactory

    with throwaway_study("reports"):
        pi = UserFactory(username="bench-pi", role="pi")
        client = Client()
        client.force_login(pi)
        tenth = max(args.hands // 10, 4)
        results = {}
        for label, n_new in (("tenth", tenth), ("study", args.hands - tenth)):
            start = time.perf_counter()
            experiment, _runs = evaluated_experiment(n_hands=n_new, frames_per_clip=args.frames, test_per_group=None,
                                                     test_fraction=TEST_FRACTION, name=label, n_boot=2000,
                                                     n_annotators=2)
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")  # planner statistics, as autovacuum keeps them on a running database
            built = time.perf_counter() - start
            test_frames = sum(1 for e in experiment.split.manifest if e["subset"] == "test")
            print(f"built {label} scale ({tenth if label == 'tenth' else args.hands} hands × {args.frames} frames, "
                  f"{test_frames} test frames × 3 models) in {built:.1f} s")
            results[label] = {"dashboard": measure_page(client, f"/experiments/{experiment.pk}/", args.repeat),
                              "report": measure_report(experiment)}
            if args.profile and label == "study":
                import cProfile
                import pstats

                profiler = cProfile.Profile()
                profiler.runcall(client.get, f"/experiments/{experiment.pk}/")
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
        (t_small, q_small), (t_large, q_large) = results["tenth"]["dashboard"], results["study"]["dashboard"]
        print(f"\n{'':<22} {'tenth':>10} {'study':>10} {'ratio':>6}")
        print(f"{'dashboard ms':<22} {t_small:>10.1f} {t_large:>10.1f} {t_large / t_small:>6.2f}")
        print(f"{'dashboard queries':<22} {q_small:>10} {q_large:>10}")
        r_small, r_large = results["tenth"]["report"], results["study"]["report"]
        print(f"{'report s':<22} {r_small[0]:>10.2f} {r_large[0]:>10.2f} {r_large[0] / r_small[0]:>6.2f}")
        print(f"{'report queries':<22} {r_small[1]:>10} {r_large[1]:>10}")
        print(f"{'bundle kB':<22} {r_small[2] / 1024:>10.0f} {r_large[2] / 1024:>10.0f}")
        print(f"{'bundle identical x2':<22} {str(r_small[3]):>10} {str(r_large[3]):>10}")
        ok = t_large < GOAL_MS and q_small == q_large and r_small[3] and r_large[3]
        print(f"\ngoal: dashboard under {GOAL_MS:.0f} ms at study scale, the same queries at both scales, identical "
              f"bundles: {'met' if ok else 'NOT met'}")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
