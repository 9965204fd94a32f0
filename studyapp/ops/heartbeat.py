"""A worker's own heartbeat: a thread in the worker's main process records it alive every few seconds.

Each beat also queues again the jobs whose lease expired (common.jobs), so the work of a worker that died
is resumed or restarted by whichever worker is alive, within a lease and a beat.

The main process of a prefork worker stays free while its children run tasks, so a worker busy training
(or idle) still beats; a heartbeat queued as a task would wait behind the training run.
"""

import logging
import threading
from collections.abc import Callable

from celery import bootsteps
from django.db import close_old_connections, connection

logger = logging.getLogger(__name__)


class Heartbeat:
    """Record the worker alive at once, then every interval_s seconds until stopped."""

    def __init__(self, *, hostname: str, queues: Callable[[], list[str]], interval_s: float):
        self.hostname = hostname
        self.queues = queues
        self.interval_s = interval_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat {hostname}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)

    def beat(self) -> bool:
        """Record one beat; a database that is down is logged and tried again at the next beat."""
        from .services import jobs_requeue_expired, worker_heartbeat_record

        close_old_connections()  # drops a connection a failed beat left broken, so this one reconnects
        try:
            worker_heartbeat_record(hostname=self.hostname, queues=self.queues())
            requeued = jobs_requeue_expired()  # jobs of workers that died: their leases expired
            if requeued:
                logger.warning("Queued again the jobs of a worker that stopped: %s", requeued)
            return True
        except Exception:  # noqa: BLE001 - a heartbeat thread that dies would report a live worker dead
            logger.warning("Worker heartbeat not recorded; trying again in %s s", self.interval_s, exc_info=True)
            return False
        finally:
            close_old_connections()

    def _run(self) -> None:
        try:
            while True:
                self.beat()
                if self._stopping.wait(self.interval_s):
                    return
        finally:
            connection.close()  # this thread's own connection; Django does not close it for us


class HeartbeatStep(bootsteps.StartStopStep):
    """Start the heartbeat with the worker and stop it with the worker."""

    # After the pool, so children are forked before the thread exists; before the consumer, which is last.
    requires = ("celery.worker.components:Pool",)

    def create(self, worker):
        from django.conf import settings

        return Heartbeat(hostname=worker.hostname, queues=lambda: list(worker.app.amqp.queues.consume_from),
                         interval_s=settings.CTS_WORKER_HEARTBEAT_S)
