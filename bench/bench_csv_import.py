"""Benchmark: the cohort CSV import (csvio.import_cohort) against writing the same rows one by one through the
services, as the import did before it wrote in bulk.

Run: .venv/bin/python bench/bench_csv_import.py [--rows 1000] [--big 10000]   (needs the PostgreSQL of
DATABASE_URL; it creates and then drops its own throwaway database). The file has two hands per participant,
each with an EPS exam and a CSA value, and every fourth hand a second CSA row. Both paths start from an empty
cohort, write the same rows with their audit history, and are timed in this one run; the ratio is
row-by-row / import. The import of `--big` rows (the import's limit) is then timed alone.
Goal: 10,000 rows within a web request (a few seconds).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studyapp.settings.test")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402

GOAL_S = 5.0


def cohort_csv(rows: int) -> str:
    from studyapp.cohort import csvio

    lines = [",".join(csvio.IMPORT_COLUMNS)]
    hand = 0
    while len(lines) - 1 < rows:
        code, side = f"B-{hand // 2:05d}", ("left", "right")[hand % 2]
        person = hand // 2
        shared = [code, ("female", "male")[person % 2], str(30 + person % 50), "patient", "2026-01-05", side,
                  "", "", "2026-01-20", f"{3.5 + (hand % 30) / 10:.1f}", f"{38 + hand % 20}.0", "no", "no"]
        for k in range(2 if hand % 4 == 3 else 1):
            if len(lines) - 1 < rows:
                lines.append(",".join(shared + [f"{9 + (hand + k) % 10}.5", "", "manual", "", "2026-01-20"]))
        hand += 1
    return "\n".join(lines) + "\n"


def row_by_row(content: str, user) -> int:
    """Each row through the services (validate, save, audit, re-stage), in one transaction."""
    import csv
    import io

    from studyapp.cohort import services
    from studyapp.cohort.models import Participant

    participants, hands, written = {}, {}, 0
    with transaction.atomic():
        for cells in csv.DictReader(io.StringIO(content)):
            code = cells["study_code"]
            if code not in participants:
                participants[code] = services.participant_create(
                    history_user=user, study_code=code, sex=cells["sex"], age=int(cells["age"]),
                    recruitment=cells["recruitment"], enrolled_on=dt.date.fromisoformat(cells["enrolled_on"]))
            key = (code, cells["side"])
            if key not in hands:
                hands[key] = services.hand_create(participant=participants[code], history_user=user,
                                                  side=cells["side"])
                services.eps_exam_create(hand=hands[key], history_user=user,
                                         exam_date=dt.date.fromisoformat(cells["eps_exam_date"]),
                                         dml_ms=float(cells["dml_ms"]), sncv_m_s=float(cells["sncv_m_s"]))
            services.csa_measurement_create(hand=hands[key], history_user=user, csa_mm2=float(cells["csa_mm2"]),
                                            measured_by=user,
                                            measured_on=dt.date.fromisoformat(cells["csa_measured_on"]))
            written += 1
    assert Participant.objects.count() == len(participants)
    return written


def empty_cohort() -> None:
    from studyapp.cohort.models import CsaMeasurement, EpsExam, Hand, Participant

    for model in (CsaMeasurement, EpsExam, Hand, Participant):
        model.objects.all().delete()
        model.history.model.objects.all().delete()  # after the rows: deleting writes history too


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--big", type=int, default=10_000)
    args = parser.parse_args()

    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from django.contrib.auth import get_user_model

        from studyapp.cohort import csvio
        from studyapp.cohort.models import CsaMeasurement

        user = get_user_model().objects.create(username="bench")
        content = cohort_csv(args.rows)
        baseline = timed(lambda: row_by_row(content, user))
        empty_cohort()
        result = {}
        bulk = timed(lambda: result.update(r=csvio.import_cohort(content, history_user=user)))
        assert result["r"].ok, result["r"].errors[:5]
        assert CsaMeasurement.objects.count() == args.rows == CsaMeasurement.history.count()
        print(f"{args.rows} rows: row by row {baseline:.2f} s, import {bulk:.2f} s, "
              f"ratio {baseline / bulk:.1f}x faster")
        if args.big:
            empty_cohort()
            content = cohort_csv(args.big)
            big = timed(lambda: result.update(r=csvio.import_cohort(content, history_user=user)))
            assert result["r"].ok, result["r"].errors[:5]
            print(f"{args.big} rows: import {big:.2f} s (goal under {GOAL_S:.0f} s: "
                  f"{'met' if big < GOAL_S else 'NOT met'})")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
