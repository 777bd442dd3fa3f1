from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from django.test import Client

from audit.models import AuditEvent
from models_registry import services as registry
from oversight import exports
from oversight.models import Export
from reviews import services as reviews
from reviews.models import Decision
from tests.fixtures import api, item

pytestmark = pytest.mark.django_db


@pytest.fixture
def log(tiny_model, service, erin, alice):
    """Six decisions: half routed for audit, one of them reviewed and overridden."""
    registry.policy_update(
        model=tiny_model, changes={"random_audit_rate": 50.0}, actor=erin, note="test"
    )
    groups = [{"race": "black", "sex": "female"}, {"race": "white", "sex": "male"}]
    items = [item(n, groups=groups[n % 2]) for n in range(1, 7)]
    decisions = [r.decision for r in reviews.decisions_ingest(items=items, actor=service.user)]
    task = reviews.task_claim_next(reviewer=alice)
    other = "deny" if task.decision.model_outcome == "approve" else "approve"
    reviews.review_submit(
        task_id=task.pk, reviewer=alice, verdict="override", outcome=other,
        reason_code="model_error", rationale="Checked the pay slips.",
    )  # fmt: skip
    return decisions


@pytest.fixture
def export(django_capture_on_commit_callbacks):
    """Ask for an export and read it back. Its job is handed to Celery after commit: the test's
    transaction never commits, so the callbacks run as the commit would run them."""

    def ask(client, **body):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/api/v1/exports/", {"format": "csv", **body}, format="json")
        return _read_back(client, response)

    return ask


def _read_back(client, response):
    assert response.status_code == 202, response.json()
    assert set(response.json()) >= {"id", "status", "progress"}
    return client.get(f"/api/v1/exports/{response.json()['id']}/").json()


def download(client, body) -> zipfile.ZipFile:
    response = client.get(body["download_url"])
    assert response.status_code == 200
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_a_csv_export_has_every_decision_its_reviews_and_a_manifest(log, dave, export):
    client = api(dave)
    body = export(client)
    assert (body["status"], body["progress"], body["rows"]) == ("done", 100, 6)
    package = download(client, body)
    data = package.read("decisions.csv")
    manifest = json.loads(package.read("manifest.json"))
    assert manifest["rows"] == 6 and manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["checkpoint"]["size"] >= 1 and manifest["checkpoint"]["note"]
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert [int(r["decision_id"]) for r in rows] == [d.pk for d in log]
    reviewed = [r for r in rows if r["review_count"] == "1"]
    assert len(reviewed) == 1 and reviewed[0]["overridden"] == "True"
    # A cell per feature and per protected attribute, no JSON; the reviews in reviews.csv.
    assert (rows[0]["feature.income"], rows[0]["feature.history"]) == ("120.0", "good")
    assert (rows[0]["group.race"], rows[0]["group.sex"]) == ("white", "male")  # auditors only
    assert not {"features", "groups", "reviews"} & set(rows[0])
    (review,) = csv.DictReader(io.StringIO(package.read("reviews.csv").decode()))
    assert review["decision_id"] == reviewed[0]["decision_id"] and review["reviewer"] == "alice"
    assert review["rationale"] == "Checked the pay slips." and float(review["seconds_spent"]) >= 0
    assert review["reason_code"] == "model_error" and review["verdict"] == "override"
    assert manifest["reviews"]["rows"] == 1
    assert manifest["reviews"]["sha256"] == hashlib.sha256(package.read("reviews.csv")).hexdigest()
    assert "appeal_status" in rows[0]
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"export.created", "export.finished", "export.downloaded"} <= actions


def test_filters_pick_the_decisions(log, dave, export):
    client = api(dave)
    routed = sum(d.routed for d in log)
    assert export(client, filters={"routed": True})["rows"] == routed
    assert export(client, filters={"reason": "random_audit"})["rows"] == routed
    assert export(client, filters={"groups": {"race": "black"}})["rows"] == 3
    assert export(client, filters={"groups": {"race": "black", "sex": "male"}})["rows"] == 0
    assert export(client, filters={"since": "2999-01-01T00:00:00+00:00"})["rows"] == 0
    assert export(client, filters={"model": "tiny", "version": 1, "status": "final"})["rows"] >= 1


def test_bad_export_requests_name_the_field(log, dave):
    response = api(dave).post("/api/v1/exports/", {"format": "xls"}, format="json")
    assert response.status_code == 400 and "format" in response.json()["error"]["fields"]
    response = api(dave).post(
        "/api/v1/exports/",
        {"format": "csv", "filters": {"colour": "red", "since": "yesterday", "routed": "yes"}},
        format="json",
    )
    fields = response.json()["error"]["fields"]
    assert set(fields) == {"filters.colour", "filters.since", "filters.routed"}
    impossible = {"since": "2026-13-01T00:00:00+00:00", "until": "2026-02-30T00:00:00Z"}
    response = api(dave).post(
        "/api/v1/exports/", {"format": "csv", "filters": impossible}, format="json"
    )
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"filters.since", "filters.until"}
    assert not Export.objects.exists()


def test_pseudonymised_exports_hide_subject_refs_consistently(log, dave, export):
    client = api(dave)
    rows = list(csv.DictReader(io.StringIO(download(client, export(client, pseudonymise=True))
                                           .read("decisions.csv").decode())))  # fmt: skip
    refs = [r["subject_ref"] for r in rows]
    assert all(ref.startswith("p-") for ref in refs) and len(set(refs)) == 6
    assert not any(d.subject_ref in refs for d in log)
    again = list(csv.DictReader(io.StringIO(download(client, export(client, pseudonymise=True))
                                            .read("decisions.csv").decode())))  # fmt: skip
    assert refs != [r["subject_ref"] for r in again]  # a key per export


def test_a_services_export_has_no_protected_attributes_and_only_its_decisions(
    log, service, other_service, export
):
    body = export(service.client(), format="jsonl")
    rows = [
        json.loads(line)
        for line in download(service.client(), body).read("decisions.jsonl").splitlines()
    ]
    assert len(rows) == 6 and "groups" not in rows[0]
    assert rows[0]["features"]["history"] == "good"
    assert export(other_service.client())["rows"] == 0
    assert other_service.client().get(f"/api/v1/exports/{body['id']}/").status_code == 404


def test_a_parquet_export_reads_back(log, dave, export):
    import pyarrow.parquet as pq

    client = api(dave)
    package = download(client, export(client, format="parquet"))
    table = pq.read_table(io.BytesIO(package.read("decisions.parquet")))
    assert table.num_rows == 6
    assert table.schema.field("confidence").type == "double"
    assert json.loads(table.column("features")[0].as_py())["income"] == 120.0


def test_the_bundle_in_an_export_verifies_offline(log, dave, tmp_path, export):
    from audit import verify

    client = api(dave)
    package = download(client, export(client, include_bundle=True))
    package.extractall(tmp_path / "export")
    vkey = client.get("/api/v1/audit/public-key/").json()["vkey"]
    line = verify.verify_bundle(tmp_path / "export" / "bundle", vkey)
    assert line.startswith("OK:")


def test_the_exports_page_queues_an_export_and_offers_the_download(
    log, dave, alice, django_capture_on_commit_callbacks
):
    client = Client()
    client.force_login(dave)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/audit/exports/", {"format": "csv", "groups": "race=black", "routed": ""}
        )
    assert response.status_code == 302
    export_row = Export.objects.get()
    assert export_row.filters == {"groups": {"race": "black"}} and export_row.status == "done"
    page = client.get("/audit/exports/").content.decode()
    assert f"/audit/exports/{export_row.pk}/download/" in page
    assert client.get(f"/audit/exports/{export_row.pk}/download/").status_code == 200
    bad = client.post("/audit/exports/", {"format": "csv", "groups": "race"})
    assert bad.status_code == 400 and "is not attribute=value" in bad.content.decode()
    client.force_login(alice)
    assert client.get("/audit/exports/").status_code == 403


def test_reading_a_decision_or_a_case_is_audited(log, dave, alice):
    decision = log[0]
    api(dave).get(f"/api/v1/decisions/{decision.pk}/")
    viewed = AuditEvent.objects.filter(action="decision.viewed").get()
    assert (viewed.actor, viewed.object_id) == ("user:dave", str(decision.pk))
    task = reviews.task_claim_next(reviewer=alice)
    if task is not None:
        client = Client()
        client.force_login(alice)
        client.get(f"/review/tasks/{task.pk}/")
        assert AuditEvent.objects.filter(action="case.viewed", actor="user:alice").exists()


def test_auditors_reach_a_decisions_events_and_proof_from_its_pages(log, dave):
    from audit.services import checkpoint_sign

    checkpoint_sign()
    decision = log[0]
    client = Client()
    client.force_login(dave)
    page = client.get(f"/audit/decisions/{decision.pk}/").content.decode()
    assert "decision.ingested" in page and "in the signed tree" in page
    assert f"/api/v1/decisions/{decision.pk}/proof/" in page
    events = client.get("/audit/events/", {"object_id": str(decision.pk), "action": "decision."})
    assert f'href="/audit/decisions/{decision.pk}/"' in events.content.decode()
    refused = client.get("/audit/events/", {"since": "not a date"})
    assert refused.status_code == 400  # a bad filter is an error, never the whole log


# --- who may ask for what ------------------------------------------------------------------


def test_only_auditors_may_include_the_audit_bundle(log, service):
    response = service.client().post(
        "/api/v1/exports/", {"format": "csv", "include_bundle": True}, format="json"
    )
    assert response.status_code == 400
    assert "for auditors only" in response.json()["error"]["fields"]["include_bundle"][0]
    assert not Export.objects.exists()


def test_a_bundle_cannot_go_with_pseudonymised_rows(log, dave):
    response = api(dave).post(
        "/api/v1/exports/",
        {"format": "csv", "pseudonymise": True, "include_bundle": True},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "include_bundle": [
            "the bundle carries the raw log, subject references included; it cannot be "
            "pseudonymised"
        ]
    }
    assert not Export.objects.exists()


def test_the_exports_page_refuses_a_pseudonymised_export_with_the_bundle(log, dave):
    client = Client()
    client.force_login(dave)
    response = client.post(
        "/audit/exports/", {"format": "csv", "pseudonymise": "on", "include_bundle": "on"}
    )
    assert response.status_code == 400
    assert "it cannot be pseudonymised" in response.content.decode()
    assert not Export.objects.exists()


def test_only_roles_that_may_see_groups_may_filter_by_them(log, service, dave, export):
    response = service.client().post(
        "/api/v1/exports/",
        {
            "format": "csv",
            "filters": {"groups": {"race": "black"}, "colour": "red"},
            "include_bundle": True,
        },
        format="json",
    )
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert set(fields) == {"filters.colour", "filters.groups", "include_bundle"}
    assert "protected attributes" in fields["filters.groups"][0]
    assert not Export.objects.exists()
    assert export(api(dave), filters={"groups": {"race": "black"}})["rows"] == 3


# --- without a signing key -----------------------------------------------------------------


@pytest.fixture
def no_key(settings, tmp_path):
    settings.AUDIT_SIGNING_KEY = ""
    settings.AUDIT_SIGNING_KEY_FILE = tmp_path / "no-such.key"


def test_without_a_signing_key_an_export_goes_on_without_a_checkpoint(log, dave, no_key, export):
    from audit.models import Checkpoint

    client = api(dave)
    body = export(client)
    assert (body["status"], body["rows"]) == ("done", 6)
    manifest = json.loads(download(client, body).read("manifest.json"))
    assert manifest["checkpoint"] is None and not Checkpoint.objects.exists()
    created = AuditEvent.objects.get(action="export.created").seq
    assert manifest["log_size_at_cut"] == manifest["log_size_at_snapshot"] == created


def test_without_a_signing_key_an_export_with_the_bundle_is_refused(log, dave, no_key):
    response = api(dave).post(
        "/api/v1/exports/", {"format": "csv", "include_bundle": True}, format="json"
    )
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "not_configured" and "signing key" in error["message"]
    assert "export without the bundle" in error["fields"]["include_bundle"][0]
    assert not Export.objects.exists()


def test_with_a_key_named_for_another_log_an_export_goes_on_without_a_checkpoint(
    log, dave, settings, export
):
    from audit import note
    from audit.models import Alert

    settings.AUDIT_SIGNING_KEY = note.generate_signer("elsewhere.example/log")
    client = api(dave)
    body = export(client)
    assert (body["status"], body["rows"]) == ("done", 6)
    assert json.loads(download(client, body).read("manifest.json"))["checkpoint"] is None
    assert Alert.objects.filter(kind="checkpoint_refused").exists()
    with_bundle = export(client, include_bundle=True)
    assert with_bundle["status"] == "failed"


def test_an_export_that_fails_midway_leaves_nothing_behind(log, dave, export, monkeypatch):
    """The package is written as the rows come: one that fails is removed, not left as a zip
    of some rows (a ZipFile closes what it has into a readable zip)."""
    from django.conf import settings as django_settings

    from oversight import exports as export_module

    def broken(*args, **kwargs):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(export_module, "finish_package", broken)
    body = export(api(dave))
    assert body["status"] == "failed" and "the disk is full" in Export.objects.get().error
    assert not (Path(django_settings.EXPORT_DIR) / str(body["id"])).exists()


# --- what the manifest says about the log --------------------------------------------------


def test_the_manifest_says_how_far_the_log_had_grown_at_the_cut_and_at_the_read(
    log, dave, monkeypatch, export
):
    from oversight import services
    from tests.audit.test_chain import append

    cut = services._cut_checkpoint

    def cut_then_more_events(**kwargs):
        result = cut(**kwargs)
        append(2)  # logged after the checkpoint, before the rows are read
        return result

    monkeypatch.setattr(services, "_cut_checkpoint", cut_then_more_events)
    client = api(dave)
    manifest = json.loads(download(client, export(client)).read("manifest.json"))
    assert manifest["log_size_at_cut"] == manifest["checkpoint"]["size"]
    assert manifest["log_size_at_snapshot"] == manifest["checkpoint"]["size"] + 2
    assert manifest["rows_from_one_snapshot"] is False  # SQLite, or inside a test transaction
    assert set(manifest["notes"]) == {
        "checkpoint", "log_size_at_cut", "log_size_at_snapshot", "rows_from_one_snapshot",
        "reviews",
    }  # fmt: skip


def test_a_parquet_export_is_written_in_row_groups_of_row_group_rows(
    log, dave, monkeypatch, export
):
    import pyarrow.parquet as pq

    from oversight import exports

    monkeypatch.setattr(exports, "CHUNK", 2)
    monkeypatch.setattr(exports, "ROW_GROUP", 4)
    client = api(dave)
    package = download(client, export(client, format="parquet"))
    parquet = pq.ParquetFile(io.BytesIO(package.read("decisions.parquet")))
    groups = [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)]
    assert groups == [4, 2]
    ids = parquet.read().column("decision_id").to_pylist()
    assert ids == [d.pk for d in log]


def test_it_exports_integers_past_64_bits_exactly(log):
    from oversight import exports
    from reviews.models import Decision

    huge = 10**20 + 1  # a float would turn it into 100000000000000000000
    decision = log[0]
    Decision.objects.filter(pk=decision.pk).update(features={**decision.features, "years": huge})
    rows = exports.iter_rows(
        exports.decisions(Decision.objects.all(), {}), include_groups=False, pseudonymise=False
    )
    years = {row["decision_id"]: row["features"]["years"] for row in rows}
    assert years[decision.pk] == huge and isinstance(years[decision.pk], int)
    assert exports.canonical_json({"years": huge}) == f'{{"years":{huge}}}'


def test_a_filtered_export_carries_only_its_own_decisions_reviews_and_groups(
    tiny_model, service, erin, alice
):
    from oversight import exports
    from reviews.models import Decision, ProtectedAttribute

    registry.policy_update(model=tiny_model, changes={"review_all": True}, actor=erin, note="test")
    groups = [{"race": "black", "sex": "female"}, {"race": "white", "sex": "male"}]
    items = [item(n, groups=groups[n % 2]) for n in range(1, 4)]
    first, middle, last = (
        r.decision.pk for r in reviews.decisions_ingest(items=items, actor=service.user)
    )
    for _ in range(2):  # the first and the middle one are reviewed
        task = reviews.task_claim_next(reviewer=alice)
        reviews.review_submit(task_id=task.pk, reviewer=alice, verdict="agree")
    others = Decision.objects.exclude(pk=middle)  # inside the id range the export reads
    rows = list(exports.iter_rows(exports.decisions(others, {}), include_groups=True,
                                  pseudonymise=False))  # fmt: skip
    assert [row["decision_id"] for row in rows] == [first, last]
    assert [len(row["reviews"]) for row in rows] == [1, 0]
    stored = {}
    for decision_id, name, value in ProtectedAttribute.objects.values_list(
        "decision_id", "name", "value"
    ):
        stored.setdefault(decision_id, {})[name] = value
    assert [row["groups"] for row in rows] == [stored[first], stored[last]]


def test_a_json_lines_export_keeps_integers_past_64_bits(log, dave, export):
    huge = 10**20 + 1
    Decision.objects.filter(pk=log[0].pk).update(features={**log[0].features, "years": huge})
    client = api(dave)
    package = download(client, export(client, format="jsonl"))
    rows = [json.loads(line) for line in package.read("decisions.jsonl").splitlines()]
    assert {row["decision_id"]: row["features"]["years"] for row in rows}[log[0].pk] == huge


@pytest.mark.parametrize("who", ["dave", "service"])
def test_every_format_has_the_column_tables_columns_in_order(
    log, dave, alice, service, who, export
):
    client = api(dave) if who == "dave" else service.client()
    names = exports.columns(include_groups=who == "dave")
    assert names[: len(exports.COLUMNS)] == exports.COLUMNS
    package = download(client, export(client, format="csv"))
    header = next(csv.reader(io.StringIO(package.read("decisions.csv").decode())))
    features = [f"feature.{spec['name']}" for spec in log[0].model.features]
    flat = {"features": features, "reviews": [], "groups": ["group.race", "group.sex"]}
    assert header == [n for name in names for n in flat.get(name, [name])]
    reviews = next(csv.reader(io.StringIO(package.read("reviews.csv").decode())))
    assert reviews == list(exports.REVIEW_COLUMNS)
    (review,) = list(csv.DictReader(io.StringIO(package.read("reviews.csv").decode())))
    assert review["reviewer"] == ("alice" if who == "dave" else str(alice.pk))  # names: auditors
    jsonl = download(client, export(client, format="jsonl")).read("decisions.jsonl")
    assert list(json.loads(jsonl.splitlines()[0])) == names
    parquet = download(client, export(client, format="parquet")).read("decisions.parquet")
    assert pq.read_schema(io.BytesIO(parquet)).names == names
