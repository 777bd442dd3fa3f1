"""A worker killed with SIGKILL in the middle of an export: the job's heartbeat stops, the
sweep takes it back, another worker writes it again from the start, and the result is whole."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from oversight import services
from oversight.models import Export
from reviews.models import Decision
from tests.integration.workers import wait_for, workers

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
ROWS = 60_000


def many_decisions(model) -> None:
    now = timezone.now()
    Decision.objects.bulk_create(
        (
            Decision(
                model=model, external_id=f"k{n}", subject_ref=f"s{n}",
                features={"income": n % 200, "debt": 10, "years": 3, "history": "good",
                          "bankrupt": False},
                scored_by="client", model_outcome="approve", confidence=0.9, routed=False,
                status="final", final_outcome="approve", finalized_by="model", finalized_at=now,
                request_sha256=hashlib.sha256(str(n).encode()).hexdigest(), received_at=now,
            )
            for n in range(ROWS)
        ),
        batch_size=5000,
    )  # fmt: skip


def test_an_export_whose_worker_was_killed_is_taken_back_and_finished_whole(
    tiny_model, dave, settings
):
    many_decisions(tiny_model)
    shared = {"OVERSIGHT_EXPORT_DIR": str(settings.EXPORT_DIR)}
    with workers(OVERSIGHT_SIGNING_KEY=settings.AUDIT_SIGNING_KEY, **shared) as start:
        first = start()
        export = services.export_request(actor=dave, format="csv")

        def writing() -> bool:
            export.refresh_from_db()
            return export.status == "running" and export.progress > 0

        assert wait_for(writing, timeout=120, every=0.05), "the export never started"
        first.kill()
        export.refresh_from_db()
        assert export.status == "running" and export.progress < 95
        # Its heart stopped; once it is older than JOB_STALE_SECONDS the sweep takes it back.
        assert services.exports_sweep() == 0
        Export.objects.filter(pk=export.pk).update(
            heartbeat_at=timezone.now() - timedelta(seconds=settings.JOB_STALE_SECONDS + 60)
        )
        assert services.exports_sweep() == 1
        start()

        def finished() -> bool:
            export.refresh_from_db()
            return export.status in ("done", "failed")

        assert wait_for(finished, timeout=180), "the export was not finished after the kill"
    assert (export.status, export.rows, export.attempts) == ("done", ROWS, 2), export.error
    with zipfile.ZipFile(services.export_path(export)) as package:
        manifest = json.loads(package.read("manifest.json"))
        data = package.read("decisions.csv")
    assert manifest["rows"] == ROWS
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert sum(1 for _ in io.StringIO(data.decode())) == ROWS + 1  # header + every row once
    assert AuditEvent.objects.filter(action="export.requeued", object_id=str(export.pk)).exists()
