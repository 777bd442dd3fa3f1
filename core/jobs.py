"""Background jobs kept as rows (an export, a verification): a worker claims a job with a
conditional update and keeps a heartbeat while it works; a job whose heartbeat stopped (the
worker was killed) is taken back by the sweep and run again from the start.

The models need `status` ("queued", "running", ...), `requested_at`, `heartbeat_at` and
`attempts` fields."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Model, Q
from django.utils import timezone

QUEUED, RUNNING = "queued", "running"


def stale_after() -> timedelta:
    return timedelta(seconds=settings.JOB_STALE_SECONDS)


def claim(model: type[Model], pk: int, *, now: datetime | None = None) -> bool:
    """Take the job for this worker: queued, or running with a heartbeat older than
    JOB_STALE_SECONDS (its worker died). The row count says whether this worker won it, so a
    job is never run by two live workers at once (a message the broker redelivers late finds
    it running, with a live heartbeat, and leaves it)."""
    now = now or timezone.now()
    takeable = Q(status=QUEUED) | Q(status=RUNNING, heartbeat_at__lt=now - stale_after())
    return bool(
        model.objects.filter(takeable, pk=pk).update(
            status=RUNNING, heartbeat_at=now, attempts=F("attempts") + 1
        )
    )


def stalled(model: type[Model], *, now: datetime | None = None):
    """The running jobs whose heartbeat is older than JOB_STALE_SECONDS."""
    now = now or timezone.now()
    return model.objects.filter(status=RUNNING, heartbeat_at__lt=now - stale_after())


# A queued job whose hand-off to the broker was lost (the broker was down, the web process died
# after commit) is sent again after this long.
RESEND_AFTER = timedelta(minutes=2)


def sweep(
    model: type[Model],
    *,
    send: Callable[[int], bool],
    taken_back: Callable[[int, datetime], None],
    now: datetime | None = None,
) -> int:
    """The periodic sweep of a kind of job: take back the jobs whose worker died (calling
    `taken_back(pk, now)` in the same transaction, to audit it) and hand them, with the jobs
    still queued RESEND_AFTER after they were asked for, to `send`. Returns how many were
    sent. Running a job twice is harmless: the worker's claim is a conditional update."""
    now = now or timezone.now()
    back = []
    for pk in stalled(model, now=now).values_list("pk", flat=True)[:100]:
        with transaction.atomic():
            if requeue(model, pk, now=now):
                taken_back(pk, now)
                back.append(pk)
    waiting = model.objects.filter(status=QUEUED, requested_at__lt=now - RESEND_AFTER)
    due = sorted({*back, *waiting.values_list("pk", flat=True)[:100]})
    return len([pk for pk in due if send(pk)])


def requeue(model: type[Model], pk: int, *, now: datetime | None = None) -> bool:
    """Put a stalled job back in the queue; False when it moved on meanwhile (finished, or its
    worker's heartbeat came back)."""
    now = now or timezone.now()
    return bool(
        model.objects.filter(pk=pk, status=RUNNING, heartbeat_at__lt=now - stale_after()).update(
            status=QUEUED
        )
    )


class Heartbeat:
    """Beats a job's heart through `db` (a connection: a second one while the worker reads in
    a long read-only snapshot), at most once per JOB_HEARTBEAT_SECONDS however often called."""

    def __init__(self, db, model: type[Model], pk: int) -> None:
        self.db, self.table, self.pk = db, model._meta.db_table, pk
        self.last = timezone.now()

    def __call__(self, **columns) -> None:
        now = timezone.now()
        if not columns and (now - self.last).total_seconds() < settings.JOB_HEARTBEAT_SECONDS:
            return
        self.last = now
        names = ["heartbeat_at", *columns]
        sets = ", ".join(f"{self.db.ops.quote_name(name)} = %s" for name in names)
        with self.db.cursor() as cursor:
            cursor.execute(
                f"UPDATE {self.db.ops.quote_name(self.table)} SET {sets} WHERE id = %s",  # noqa: S608
                [now, *columns.values(), self.pk],
            )
