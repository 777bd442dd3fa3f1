"""Exports and verifications are jobs that are never stuck: a lost hand-off is sent again, a
dead worker's job is taken back and re-run from the start, and a live worker's job is never
taken from it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from kombu.exceptions import OperationalError

from audit import services as audit_services
from audit import tasks as audit_tasks
from audit.models import AuditEvent, ChainVerification
from oversight import services, tasks
from oversight.models import Export
from tests.fixtures import PASSWORD, api, item

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker_down(monkeypatch):
    def refuse(*args):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    for task in (tasks.run_export, audit_tasks.verify_chain):
        monkeypatch.setattr(task, "delay", refuse)


@pytest.fixture
def decisions(tiny_model, service):
    from reviews.services import decisions_ingest

    decisions_ingest(items=[item(n) for n in range(1, 4)], actor=service.user)


def age(model, pk: int, **fields) -> None:
    model.objects.filter(pk=pk).update(**fields)


def test_with_the_broker_down_an_export_request_is_a_202_and_runs_later(
    decisions, dave, broker_down, django_capture_on_commit_callbacks, monkeypatch
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api(dave).post("/api/v1/exports/", {"format": "csv"}, format="json")
    assert response.status_code == 202
    export = Export.objects.get()
    assert (export.status, response.json()["status"]) == ("queued", "queued")
    monkeypatch.undo()  # the broker is back
    assert services.exports_sweep() == 0  # not stale yet: its message may still be on the way
    age(Export, export.pk, requested_at=timezone.now() - timedelta(minutes=3))
    assert services.exports_sweep() == 1
    export.refresh_from_db()
    assert (export.status, export.rows) == ("done", 3)


def test_with_the_broker_down_the_export_form_and_verify_now_say_it_waits(
    decisions, dave, broker_down, django_capture_on_commit_callbacks
):
    client = Client()
    client.login(username="dave", password=PASSWORD)
    with django_capture_on_commit_callbacks(execute=True):
        exported = client.post("/audit/exports/", {"format": "csv"}, follow=True)
        verified = client.post("/audit/verify/", follow=True)
    assert exported.status_code == 200
    assert b"it waits for a worker if none is reachable" in exported.content
    assert verified.status_code == 200 and b"if none is reachable" in verified.content
    assert Export.objects.get().status == "queued"
    assert ChainVerification.objects.get().status == "queued"


def test_a_dead_workers_export_is_taken_back_and_rerun_from_a_clean_directory(
    decisions, dave, settings
):
    export = services.export_request(actor=dave, format="csv")
    # A worker took it and died half-way: its heartbeat stopped, a partial file is left.
    age(Export, export.pk, status="running", heartbeat_at=timezone.now(), attempts=1)
    workdir = settings.EXPORT_DIR / str(export.pk)
    workdir.mkdir(parents=True)
    (workdir / "decisions.csv").write_text("half a row")
    (workdir / "leftover.tmp").write_text("x")
    # A late copy of its message arrives while the heart still beats: it leaves the job alone.
    services.export_run(export_id=export.pk)
    assert Export.objects.get(pk=export.pk).status == "running"
    assert services.exports_sweep() == 0
    age(Export, export.pk, heartbeat_at=timezone.now() - timedelta(minutes=6))
    services.exports_sweep()
    export.refresh_from_db()
    assert (export.status, export.rows, export.attempts) == ("done", 3, 2)
    assert sorted(p.name for p in workdir.iterdir()) == [f"oversight-export-{export.pk}.zip"]
    requeued = AuditEvent.objects.get(action="export.requeued")
    assert requeued.object_id == str(export.pk)


@pytest.mark.django_db(transaction=True)  # its own snapshot on PostgreSQL, as in a worker
def test_a_running_export_beats_its_heart(decisions, dave, monkeypatch):
    from oversight import exports

    monkeypatch.setattr(exports, "CHUNK", 1)
    seen = []
    real = exports.jobs.Heartbeat.__call__

    def spy(self, **columns):
        seen.append(columns)
        return real(self, **columns)

    monkeypatch.setattr(exports.jobs.Heartbeat, "__call__", spy)
    export = services.export_request(actor=dave, format="csv")
    services.export_run(export_id=export.pk)
    assert {"progress": 31} in seen  # 1 of 3 rows: progress is written with the heartbeat
    export.refresh_from_db()
    assert export.heartbeat_at is not None and export.status == "done"


def test_a_dead_workers_verification_is_taken_back_and_rerun(decisions, dave):
    verification = audit_services.verification_request(actor=dave)
    age(
        ChainVerification,
        verification.pk,
        status="running",
        heartbeat_at=timezone.now() - timedelta(minutes=6),
        attempts=1,
    )
    audit_services.verifications_sweep()
    verification.refresh_from_db()
    assert (verification.status, verification.ok, verification.attempts) == ("done", True, 2)
    assert AuditEvent.objects.filter(action="audit.verification_requeued").count() == 1


def test_a_live_verification_is_not_taken_from_its_worker(decisions, dave):
    verification = audit_services.verification_request(actor=dave)
    age(ChainVerification, verification.pk, status="running", heartbeat_at=timezone.now())
    audit_services.verification_run(verification_id=verification.pk)
    audit_services.verifications_sweep()
    assert ChainVerification.objects.get(pk=verification.pk).status == "running"
