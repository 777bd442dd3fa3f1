"""On PostgreSQL an export's rows are one read-only snapshot, even while decisions arrive."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from audit.models import AuditEvent
from oversight import export_sql, exports
from oversight.models import Export
from reviews import services as reviews
from tests.fixtures import api, item

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_it_reads_the_rows_in_one_snapshot_while_a_decision_arrives(
    tiny_model, service, dave, monkeypatch
):
    reviews.decisions_ingest(items=[item(n) for n in range(1, 5)], actor=service.user)
    # Progress is then written every two rows, through the second connection: the snapshot's
    # own transaction is read-only and would refuse it.
    monkeypatch.setattr(exports, "CHUNK", 2)
    # On PostgreSQL the database writes the rows (oversight.export_sql).
    write_csv, arrived = export_sql.WRITERS["csv"], []

    def ingest_one() -> None:
        try:
            results = reviews.decisions_ingest(items=[item(99)], actor=service.user)
            arrived.extend(result.decision for result in results)
        finally:
            connection.close()

    def write_while_a_decision_arrives(path, qs, names, tick, **options):
        thread = threading.Thread(target=ingest_one)
        thread.start()
        thread.join()  # committed after the snapshot was taken, before any row was read
        return write_csv(path, qs, names, tick, **options)

    monkeypatch.setitem(export_sql.WRITERS, "csv", write_while_a_decision_arrives)
    response = api(dave).post("/api/v1/exports/", {"format": "csv"}, format="json")
    export = Export.objects.get(pk=response.json()["id"])
    assert len(arrived) == 1
    assert (export.status, export.rows, export.error) == ("done", 4, "")
    manifest = export.manifest
    assert manifest["rows_from_one_snapshot"] is True
    ingested = AuditEvent.objects.get(action="decision.ingested", object_id=str(arrived[0].pk))
    assert manifest["log_size_at_cut"] <= manifest["log_size_at_snapshot"] < ingested.seq
