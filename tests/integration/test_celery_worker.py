"""A real `celery worker` process, over Redis, against the PostgreSQL test database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from audit import services
from audit.models import ChainVerification
from config.celery import app as celery_app
from tests.audit.test_chain import append

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker():
    """Start a worker on a queue of its own, pointed at the test database."""
    queue = f"oversight-test-{uuid.uuid4().hex[:8]}"
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{connection.settings_dict['NAME']}",
        "REDIS_URL": os.environ["REDIS_URL"],
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
         "--concurrency=1", "-Q", queue, "--loglevel=INFO", "--without-heartbeat",
         "--without-mingle", "--without-gossip"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    celery_app.conf.task_always_eager = False
    routes = celery_app.conf.task_routes
    celery_app.conf.task_routes = {"*": {"queue": queue}}

    def stop() -> str:
        if process.poll() is None:
            process.terminate()
        try:
            output, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        return output or ""

    try:
        yield stop
    finally:
        celery_app.conf.task_always_eager = True
        celery_app.conf.task_routes = routes
        print(stop()[-4000:])


def _wait_for(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_a_real_worker_runs_the_chain_verification_over_redis(worker):
    """The task goes through Redis to the worker process, which writes the result."""
    append(25)
    verification = services.verification_request(actor="user:dave")

    def done() -> bool:
        verification.refresh_from_db()
        return verification.status == ChainVerification.Status.DONE

    assert _wait_for(done), "the worker did not finish the verification in time"
    assert verification.ok is True
    # 25 events + the "verification requested" event itself.
    assert verification.events_checked == 26
    log = worker()
    assert "audit.tasks.verify_chain[" in log and "succeeded" in log, log[-2000:]
