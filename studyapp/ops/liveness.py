"""Whether workers are alive, judged from their own periodic heartbeats (pure: no Django, no clock)."""

from dataclasses import dataclass
from datetime import datetime, timedelta

# A worker counts as alive while its last beat is younger than this many heartbeat intervals, so one or two
# late beats (a slow database, a loaded host) do not report it dead.
BEATS_BEFORE_DEAD = 3


@dataclass(frozen=True)
class Beat:
    hostname: str
    queues: tuple[str, ...]
    seen_at: datetime


def freshness_window(interval_s: float) -> timedelta:
    return timedelta(seconds=BEATS_BEFORE_DEAD * interval_s)


def is_alive(seen_at: datetime | None, *, now: datetime, interval_s: float) -> bool:
    return seen_at is not None and now - seen_at < freshness_window(interval_s)


def liveness_report(beats: list[Beat], *, queues: dict[str, str], now: datetime, interval_s: float) -> dict:
    """Each worker's liveness, and for each role's queue (e.g. default, training) the live workers on it."""
    workers = [{"hostname": beat.hostname, "queues": list(beat.queues), "last_seen": beat.seen_at,
                "alive": is_alive(beat.seen_at, now=now, interval_s=interval_s)}
               for beat in sorted(beats, key=lambda beat: beat.seen_at, reverse=True)]
    by_queue = {}
    for role, queue in queues.items():
        live = [worker["hostname"] for worker in workers if worker["alive"] and queue in worker["queues"]]
        by_queue[role] = {"queue": queue, "alive": bool(live), "workers": live}
    return {"workers": workers, "queues": by_queue}
