"""Torch threads per worker process: cores shared by the pool, an override, and what a child applies."""

import os
import subprocess
import sys

import pytest

from mlworker.threads import THREADS_ENV, available_cpus, threads_per_process


@pytest.mark.parametrize(("cpus", "concurrency", "expected"), [
    (16, 2, 8), (16, 3, 5), (2, 2, 1), (2, 1, 2), (1, 4, 1), (8, 0, 8),
])
def test_cores_are_shared_by_the_pool_processes(cpus, concurrency, expected):
    assert threads_per_process(cpus=cpus, concurrency=concurrency) == expected


def test_the_environment_overrides_and_bad_values_are_refused():
    assert threads_per_process(cpus=16, concurrency=2, override="3") == 3
    assert threads_per_process(cpus=16, concurrency=2, override="") == 8
    for bad in ("0", "-1", "two", "1.5"):
        with pytest.raises(ValueError, match=THREADS_ENV):
            threads_per_process(cpus=16, concurrency=2, override=bad)


def test_available_cpus_is_within_the_affinity():
    assert 1 <= available_cpus() <= len(os.sched_getaffinity(0))


def test_a_pool_child_sets_torch_threads_from_the_concurrency_its_parent_recorded():
    """Run the two signal handlers as Celery does: the main process, then (in a fresh interpreter) a child."""
    code = (
        "import os, torch\n"
        "from mlworker import threads\n"
        "threads.on_worker_init(options={'concurrency': 2})\n"
        "assert os.environ[threads.CONCURRENCY_ENV] == '2'\n"
        "threads.on_worker_process_init()\n"
        "print(torch.get_num_threads(), threads.applied())\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in (THREADS_ENV, "CTS_WORKER_CONCURRENCY")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    expected = max(1, available_cpus() // 2)
    assert out.startswith(f"{expected} ") and "'worker_concurrency': 2" in out
    out = subprocess.run([sys.executable, "-c", code], env={**env, THREADS_ENV: "1"}, capture_output=True,
                         text=True, check=True).stdout
    assert out.startswith("1 ") and f"'source': '{THREADS_ENV}'" in out
