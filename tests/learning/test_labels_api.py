"""GET /api/v1/models/{name}/labels/ (cursor-paginated JSON) and …/labels.parquet (streamed)."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pyarrow.parquet as pq
import pytest
from django.utils import timezone

from learning.models import TrainingExample
from outbox import services as outbox
from outbox.models import Message
from tests.fixtures import api
from tests.learning.common import ingest, settle

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored(tiny_model, service, erin, alice, carol):
    """Five labels in the training store, one of them superseded by an appeal."""
    decisions = ingest(tiny_model, service, erin, n=4)
    for decision in decisions:
        settle(decision, "approve", alice)
    settle(decisions[0], "deny", carol, source="appeal", appeal_id=1, appeal_result="overturned")
    for message in Message.objects.filter(kind="label").order_by("pk"):
        outbox.message_deliver(message_id=message.pk)
    assert TrainingExample.objects.count() == 5
    return decisions


def test_the_models_service_pages_through_its_labels_with_a_cursor(stored, service):
    client = service.client()
    first = client.get("/api/v1/models/tiny/labels/?page_size=2").json()
    assert len(first["results"]) == 2 and first["next"]
    rows = first["results"]
    url = first["next"]
    while url:
        page = client.get(url).json()
        rows += page["results"]
        url = page["next"]
    assert len(rows) == 5 and [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    appeal = next(r for r in rows if r["source"] == "appeal")
    replaced = next(r for r in rows if r["id"] == appeal["supersedes"])
    assert (appeal["label"], appeal["current"], replaced["current"]) == ("deny", True, False)
    assert set(rows[0]) >= {"decision", "external_id", "features", "reasons", "weight"}


def test_labels_filter_by_source_and_since(stored, service):
    client = service.client()
    appeals = client.get("/api/v1/models/tiny/labels/?source=appeal").json()["results"]
    assert [r["source"] for r in appeals] == ["appeal"]
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    assert client.get("/api/v1/models/tiny/labels/", {"since": future}).json()["results"] == []
    bad = client.get("/api/v1/models/tiny/labels/?source=gold")
    assert bad.status_code == 400 and "source" in bad.json()["error"]["fields"]


def test_only_the_models_services_owner_and_auditors_read_its_labels(
    stored, other_service, alice, erin, dave
):
    assert other_service.client().get("/api/v1/models/tiny/labels/").status_code == 404
    assert api(alice).get("/api/v1/models/tiny/labels/").status_code == 403
    assert api(erin).get("/api/v1/models/tiny/labels/").status_code == 200
    assert api(dave).get("/api/v1/models/tiny/labels/").status_code == 200
    assert other_service.client().get("/api/v1/models/tiny/labels.parquet").status_code == 404


def test_the_parquet_file_holds_the_same_rows_streamed(stored, service):
    response = service.client().get("/api/v1/models/tiny/labels.parquet")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(b"".join(response.streaming_content))).to_pylist()
    assert len(table) == 5
    by_id = {row["id"]: row for row in table}
    json_rows = service.client().get("/api/v1/models/tiny/labels/").json()["results"]
    for row in json_rows:
        assert by_id[row["id"]]["label"] == row["label"]
        assert json.loads(by_id[row["id"]]["features"]) == row["features"]
        assert by_id[row["id"]]["current"] == row["current"]
    filtered = service.client().get("/api/v1/models/tiny/labels.parquet?source=appeal")
    assert pq.read_table(io.BytesIO(b"".join(filtered.streaming_content))).num_rows == 1


def test_an_empty_store_is_an_empty_page_and_an_empty_parquet_file(tiny_model, service):
    assert service.client().get("/api/v1/models/tiny/labels/").json()["results"] == []
    response = service.client().get("/api/v1/models/tiny/labels.parquet")
    assert pq.read_table(io.BytesIO(b"".join(response.streaming_content))).num_rows == 0
