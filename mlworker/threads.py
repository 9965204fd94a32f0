"""Torch threads per worker process: the cores a worker may use, shared by its pool processes.

Uncapped, every prefork child starts one thread per core, and two children training at once ran 20x slower
than one (13 vs 280 img/s); one thread each ran at 187 + 215 img/s. The main worker process records its
concurrency in the environment before forking; each child sets its threads when it starts.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

THREADS_ENV = "CTS_TORCH_THREADS"  # a positive integer overrides the computed number
CONCURRENCY_ENV = "CTS_WORKER_CONCURRENCY"  # set by the worker's main process for its children

# What this process applied, recorded on each training run (empty outside a worker child).
_applied: dict[str, Any] = {}


def threads_per_process(*, cpus: int, concurrency: int, override: str | None = None) -> int:
    """Threads for one of `concurrency` pool processes sharing `cpus` cores; `override` (the env value) wins."""
    if override not in (None, ""):
        try:
            threads = int(override)
        except ValueError:
            threads = 0
        if threads < 1:
            raise ValueError(f"{THREADS_ENV} must be a positive whole number of threads, got {override!r}.")
        return threads
    return max(1, cpus // max(1, concurrency))


def available_cpus() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup v2 CPU quota (containers)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cpus


def remember_concurrency(concurrency: int | str | None) -> None:
    """In the worker's main process, before the pool forks: tell the children how many of them share the cores."""
    if isinstance(concurrency, int) or (isinstance(concurrency, str) and concurrency.isdigit()):
        os.environ[CONCURRENCY_ENV] = str(int(concurrency))


def apply_worker_threads() -> dict[str, Any]:
    """In a pool child: set torch's threads from the cores and the concurrency; returns what it set."""
    import torch

    cpus = available_cpus()
    # Celery's default concurrency is one process per core.
    concurrency = int(os.environ.get(CONCURRENCY_ENV) or cpus)
    threads = threads_per_process(cpus=cpus, concurrency=concurrency, override=os.environ.get(THREADS_ENV))
    torch.set_num_threads(threads)
    _applied.clear()
    _applied.update({"torch_threads": threads, "cpus": cpus, "worker_concurrency": concurrency,
                     "source": THREADS_ENV if os.environ.get(THREADS_ENV) else "cpus // worker_concurrency"})
    return dict(_applied)


def applied() -> dict[str, Any]:
    """What `apply_worker_threads` set in this process; empty when it did not run (tests, scripts)."""
    return dict(_applied)


def on_worker_init(sender=None, instance=None, conf=None, options=None, **kwargs) -> None:
    """celeryd_init handler (main process)."""
    concurrency = (options or {}).get("concurrency") or (conf.worker_concurrency if conf is not None else None)
    remember_concurrency(concurrency)


def on_worker_process_init(**kwargs) -> None:
    """worker_process_init handler (each pool child)."""
    apply_worker_threads()
