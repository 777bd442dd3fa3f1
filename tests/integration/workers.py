"""Real `celery worker` processes for integration tests: over Redis, against the PostgreSQL
test database, each on a queue of its own so that tests never share messages."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

from config.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]


class Worker:
    def __init__(self, queue: str, **env: str) -> None:
        db = settings.DATABASES["default"]
        url = (
            f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{connection.settings_dict['NAME']}"
        )
        self.env = {
            **os.environ,
            "DATABASE_URL": url,
            "REDIS_URL": os.environ["REDIS_URL"],
            "CELERY_DEFAULT_QUEUE": queue,
            **env,
        }
        self.queue = queue
        self.process: subprocess.Popen | None = None

    def start(self) -> Worker:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
             "--concurrency=1", "-Q", self.queue, "--loglevel=INFO", "--without-heartbeat",
             "--without-mingle", "--without-gossip"],
            cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        return self

    def kill(self) -> None:
        """SIGKILL: the worker gets no chance to finish, acknowledge or clean up."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=20)

    def stop(self) -> str:
        if self.process is None:
            return ""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            output, _ = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            output, _ = self.process.communicate()
        except ValueError:  # killed earlier: its output was read
            output = ""
        return output or ""


@contextmanager
def workers(**env: str) -> Iterator[Callable[[], Worker]]:
    """Route every task of this process to a fresh queue, and yield a function that starts
    a worker on it (as many, one after the other, as the test wants); all stop at the end."""
    queue = f"oversight-test-{uuid.uuid4().hex[:8]}"
    started: list[Worker] = []
    celery_app.conf.task_always_eager = False
    routes = celery_app.conf.task_routes
    route_to({"*": {"queue": queue}})

    def start() -> Worker:
        started.append(Worker(queue, **env).start())
        return started[-1]

    try:
        yield start
    finally:
        celery_app.conf.task_always_eager = True
        route_to(routes)
        for worker in started:
            print(worker.stop()[-3000:])


def route_to(routes) -> None:
    """Route this process's tasks anew: Celery builds its router once and keeps it, so a
    change of task_routes alone would leave tasks going to an earlier test's queue."""
    celery_app.conf.task_routes = routes
    celery_app.amqp.flush_routes()
    celery_app.amqp.router = celery_app.amqp.Router()


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0, every: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False
