"""The periodic jobs of the embedded default, run in the web process.

With no broker (no REDIS_URL: Celery tasks run eagerly in-process) there is no `celery beat`
either, and nothing would sign checkpoints, expire leases, sweep the outbox, exports and
verifications, or evaluate alerts. So the web process runs beat's schedule itself
(CELERY_BEAT_SCHEDULE, the same tasks at the same intervals) in one daemon thread, started
when the WSGI application is loaded (config.wsgi: `make run`'s runserver, or a lone
gunicorn without a broker). EMBEDDED_JOBS turns it off or on; it is off with a broker (beat
does the work) and never starts in tests, which do not load config.wsgi.
"""

from __future__ import annotations

import logging
import threading
import time
from importlib import import_module

from django.conf import settings
from django.db import close_old_connections

from config.celery import app

logger = logging.getLogger(__name__)
_started = threading.Lock()
_thread: threading.Thread | None = None
TICK = 1.0


class Scheduler:
    """Each job of the schedule, due every `schedule` seconds from start, run in order."""

    def __init__(self, schedule: dict[str, dict], *, clock=time.monotonic) -> None:
        self.clock = clock
        start = clock()
        self.jobs = {
            name: {
                "task": entry["task"],
                "every": float(entry["schedule"]),
                "due": start + float(entry["schedule"]),
            }
            for name, entry in schedule.items()
        }

    def due(self) -> list[str]:
        now = self.clock()
        return [name for name, job in self.jobs.items() if job["due"] <= now]

    def run_due(self, run) -> list[str]:
        """Run every job that is due with `run(task_name)`; a job that fails is logged and
        tried again at its next time, like beat's."""
        ran = []
        for name in self.due():
            job = self.jobs[name]
            job["due"] = self.clock() + job["every"]
            try:
                run(job["task"])
            except Exception:
                logger.exception("embedded job %s (%s) failed", name, job["task"])
            finally:
                close_old_connections()
            ran.append(name)
        return ran


def run_task(name: str) -> None:
    """Run a registered Celery task here and now, as an eager call would. Its module is
    imported first: Celery's autodiscovery is lazy, and beat's schedule names tasks by path."""
    import_module(name.rpartition(".")[0])
    app.tasks[name].apply(throw=True)


def _loop(scheduler: Scheduler, stop: threading.Event) -> None:
    while not stop.wait(TICK):
        scheduler.run_due(run_task)


def start(schedule: dict[str, dict] | None = None) -> threading.Thread | None:
    """Start the jobs' thread once per process (a second call does nothing)."""
    global _thread
    if not _started.acquire(blocking=False):
        return _thread
    scheduler = Scheduler(schedule if schedule is not None else settings.CELERY_BEAT_SCHEDULE)
    _thread = threading.Thread(
        target=_loop, args=(scheduler, threading.Event()), name="embedded-jobs", daemon=True
    )
    _thread.start()
    every = ", ".join(f"{name} every {job['every']:g} s" for name, job in scheduler.jobs.items())
    logger.warning("Periodic jobs run in this process (no broker): %s", every)
    return _thread
