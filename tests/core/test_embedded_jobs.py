"""The embedded default's periodic jobs: beat's schedule, run by a thread of the web process
when there is no broker (config.embedded)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from config import embedded
from reviews.models import ReviewTask
from tests.fixtures import api
from tests.reviews.test_queue import CLAIM, routed


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


SCHEDULE = {
    "leases": {"task": "reviews.tasks.expire_leases", "schedule": 60.0},
    "checkpoint": {"task": "audit.tasks.sign_checkpoint", "schedule": 60.0},
    "daily": {"task": "audit.tasks.verify_chain_daily", "schedule": 86400.0},
}


@pytest.mark.django_db  # each run ends by closing the connections it may have left
def test_each_job_runs_at_its_interval_and_a_failure_does_not_stop_the_others(caplog):
    clock, ran = Clock(), []
    scheduler = embedded.Scheduler(SCHEDULE, clock=clock)

    def run(task: str) -> None:
        ran.append(task)
        if task == "reviews.tasks.expire_leases":
            raise RuntimeError("the database was busy")

    assert scheduler.run_due(run) == []  # nothing runs at start: beat waits an interval too
    clock.now += 60
    with caplog.at_level(logging.ERROR):
        assert scheduler.run_due(run) == ["leases", "checkpoint"]
    assert "embedded job leases" in caplog.text
    clock.now += 30
    assert scheduler.run_due(run) == []
    clock.now += 30
    assert scheduler.run_due(run) == ["leases", "checkpoint"]  # tried again at its next time
    clock.now += 86400
    assert "daily" in scheduler.run_due(run)


def test_the_schedule_is_beats_and_runs_without_a_broker_only():
    assert set(settings.CELERY_BEAT_SCHEDULE) >= {
        "expire-review-leases", "sign-audit-checkpoint", "sweep-outbox", "sweep-exports",
        "sweep-verifications", "evaluate-oversight-alerts",
    }  # fmt: skip
    assert (
        settings.CELERY_TASK_ALWAYS_EAGER
        if "EMBEDDED_JOBS" not in __import__("os").environ
        else settings.EMBEDDED_JOBS
    ) == settings.EMBEDDED_JOBS


@pytest.mark.django_db
def test_a_job_runs_the_registered_task_in_process(tiny_model, service, erin, alice):
    routed(tiny_model, service, erin)
    task_id = api(alice).post(CLAIM).json()["id"]
    ReviewTask.objects.filter(pk=task_id).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    embedded.run_task("reviews.tasks.expire_leases")
    assert ReviewTask.objects.get(pk=task_id).state == "open"


def test_the_thread_starts_once_per_process():
    first = embedded.start(schedule={})
    assert first is not None and first.daemon and first.name == "embedded-jobs"
    assert embedded.start(schedule={}) is first
