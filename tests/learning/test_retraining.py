"""Versions carrying training data; retraining a working skops candidate from the champion's
clone, its base data and the human labels; automatic runs; failures and the sweep."""

from __future__ import annotations

import io
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from django.test import Client
from django.utils import timezone

from learning.models import LabelRecord, RetrainingRun
from learning.services import retraining_execute, retraining_request, retraining_sweep
from models_registry import artifacts
from models_registry import services as registry
from models_registry.models import ModelVersion, TrainingData
from models_registry.scoring import frame
from outbox import services as outbox
from outbox.models import Message
from tests.fixtures import TINY_FEATURES, api, item, register_tiny
from tests.learning.common import events, ingest, parquet, settle, tiny_data_parquet

pytestmark = pytest.mark.django_db


@pytest.fixture
def trainable(erin, service, tiny_artifact):
    """The tiny model whose champion (version 1) carries its training and test data."""
    model = register_tiny(erin, [service.user])
    version = registry.version_upload(
        model=model,
        artifact=tiny_artifact,
        actor=erin,
        training_data=tiny_data_parquet(600, seed=3),
        test_data=tiny_data_parquet(200, seed=4, groups=True),
    )
    registry.version_promote(version=version, actor=erin)
    return model


def upload(client, artifact: bytes, **files):
    data = {"artifact": io.BytesIO(artifact)}
    data.update({name: io.BytesIO(raw) for name, raw in files.items()})
    return client.post("/api/v1/models/tiny/versions/", data, format="multipart")


def test_a_version_carries_its_training_data_with_its_sha256(erin, service, tiny_artifact):
    register_tiny(erin, [service.user])
    raw = tiny_data_parquet(100)
    response = upload(api(erin), tiny_artifact, training_data=raw)
    assert response.status_code == 201, response.content
    (dataset,) = response.json()["training_data"]
    assert dataset["split"] == "train" and dataset["rows"] == 100
    assert dataset["sha256"] == artifacts.sha256(raw)
    assert bytes(TrainingData.objects.values_list("data", flat=True).get()) == raw
    (event,) = events("version.registered")
    assert event["data"]["training_data"]["sha256"] == dataset["sha256"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["label"]), "has no 'label' column"),
        (lambda f: f.drop(columns=["income"]), "required feature 'income'"),
        (lambda f: f.assign(colour="red"), "column 'colour' is not a feature"),
        (lambda f: f.assign(income=-5.0), "values are below the minimum 0"),
        (lambda f: f.assign(history="awful"), "are not one of good, fair, poor"),
        (lambda f: f.assign(label="maybe"), "are not labels of tiny"),
        (lambda f: f.assign(income="rich"), "must hold numbers"),
    ],
)
def test_training_data_that_breaks_the_schema_is_a_400_naming_it(
    erin, service, tiny_artifact, change, message
):
    register_tiny(erin, [service.user])
    raw = tiny_data_parquet(50)
    table = pd.read_parquet(io.BytesIO(raw))
    response = upload(api(erin), tiny_artifact, training_data=parquet(change(table)))
    assert response.status_code == 400
    problems = response.json()["error"]["fields"]["training_data"]
    assert any(message in p for p in problems), problems
    assert not ModelVersion.objects.exists()


def test_a_file_that_is_not_parquet_is_refused(erin, service, tiny_artifact):
    register_tiny(erin, [service.user])
    response = upload(api(erin), tiny_artifact, test_data=b"income,label\n1,approve\n")
    assert response.status_code == 400
    assert "not a readable Parquet file" in response.json()["error"]["fields"]["test_data"][0]


def labels_for(model, service, erin, alice, n: int = 30, start: int = 1) -> list:
    """n decisions labelled by a person: approve when income is high, deny otherwise."""
    rng = np.random.default_rng(start)
    bodies = [
        item(i, features={"income": float(rng.uniform(0, 200)), "history": "fair"})
        for i in range(start, start + n)
    ]
    decisions = ingest(model, service, erin, bodies=bodies)
    for decision in decisions:
        settle(decision, "approve" if decision.features["income"] > 90 else "deny", alice)
    return decisions


def run_now(model, actor, django_capture_on_commit_callbacks) -> RetrainingRun:
    with django_capture_on_commit_callbacks(execute=True):  # the task runs eagerly
        run = retraining_request(model=model, actor=actor)
    run.refresh_from_db()
    return run


def test_retraining_registers_a_working_skops_candidate_with_its_provenance(
    trainable, service, erin, alice, django_capture_on_commit_callbacks
):
    labels_for(trainable, service, erin, alice, n=30)
    run = run_now(trainable, erin, django_capture_on_commit_callbacks)
    assert run.status == "done", run.error
    candidate = run.candidate
    assert (candidate.number, candidate.status, candidate.parent.number) == (2, "candidate", 1)
    # A real skops file, loaded with the trusted types only, that scores the schema's rows.
    data = bytes(ModelVersion.objects.values_list("artifact", flat=True).get(pk=candidate.pk))
    estimator = artifacts.load(data)
    assert estimator is not artifacts.estimator_for(trainable.versions.get(number=1))
    proba = estimator.predict_proba(frame(TINY_FEATURES, [item()["features"]]))
    assert proba.shape == (1, 2)
    provenance = candidate.provenance
    assert provenance["labels_by_source"] == {"review": 30} and provenance["parent"] == 1
    assert provenance["base_data"]["rows"] == 600 and run.base_rows == 600
    assert len(provenance["label_ids_sha256"]) == 64 and provenance["label_count"] == 30
    assert set(provenance["libraries"]) >= {"scikit-learn", "skops", "numpy", "python"}
    assert provenance["training_seconds"] >= 0 and len(provenance["data_window"]) == 2
    assert candidate.label_count == 30 and candidate.data_window_start is not None
    assert candidate.metrics["overall"]["n"] == 200  # the uploaded test split (no audits yet)
    assert (
        LabelRecord.trained_into.through.objects.filter(modelversion_id=candidate.pk).count() == 30
    )
    assert run.evaluation.holdout["test_split_rows"] == 200
    assert [e["trigger"] for e in events("retraining.requested")] == ["manual"]
    assert events("retraining.done")[0]["candidate"] == 2
    assert events("version.registered")[-1]["parent"] == 1


def test_holdout_labels_are_never_trained_on(
    trainable, service, erin, alice, django_capture_on_commit_callbacks
):
    registry.policy_update(
        model=trainable, changes={"random_audit_rate": 100.0}, actor=erin, note="test"
    )
    labels_for(trainable, service, erin, alice, n=40)
    held = LabelRecord.objects.filter(holdout=True).count()
    assert 0 < held < 40
    run = run_now(trainable, erin, django_capture_on_commit_callbacks)
    assert run.candidate.provenance["label_count"] == 40 - held
    assert run.evaluation.holdout["labels"] == held
    trained = set(LabelRecord.trained_into.through.objects.values_list("labelrecord_id", flat=True))
    assert not trained & set(LabelRecord.objects.filter(holdout=True).values_list("pk", flat=True))


def test_the_api_queues_one_run_at_a_time_for_the_owner(trainable, service, erin, alice, dave):
    labels_for(trainable, service, erin, alice, n=5)
    first = api(erin).post("/api/v1/models/tiny/retrain/")
    assert first.status_code == 202 and first.json()["status"] == "queued"
    again = api(erin).post("/api/v1/models/tiny/retrain/")
    assert again.status_code == 409 and again.json()["error"]["code"] == "retraining_active"
    assert api(dave).post("/api/v1/models/tiny/retrain/").status_code == 403
    assert service.client().post("/api/v1/models/tiny/retrain/").status_code == 403
    listed = api(dave).get("/api/v1/models/tiny/retrain/").json()
    assert [r["id"] for r in listed] == [first.json()["id"]]
    assert retraining_execute(run_id=first.json()["id"]) == "done"
    assert retraining_execute(run_id=first.json()["id"]) == "skipped"


def test_the_retrain_button_queues_a_run(trainable, erin):
    client = Client()
    client.force_login(erin)
    response = client.post("/models/tiny/learning/retrain/", follow=True)
    assert "is queued" in response.content.decode()
    assert RetrainingRun.objects.get().trigger == "manual"


def test_a_run_without_labels_fails_and_says_why(trainable, erin):
    run = retraining_request(model=trainable, actor=erin)
    assert retraining_execute(run_id=run.pk) == "failed"
    run.refresh_from_db()
    assert run.status == "failed" and "no human labels" in run.error
    assert events("retraining.failed")[0]["error"].startswith("ApplicationError")


def test_a_model_without_a_champion_cannot_be_retrained(erin, service):
    register_tiny(erin, [service.user])
    response = api(erin).post("/api/v1/models/tiny/retrain/")
    assert response.status_code == 409 and "no champion" in response.json()["error"]["message"]


def test_it_retrains_automatically_after_the_policys_number_of_new_labels(
    trainable, service, erin, alice
):
    registry.policy_update(
        model=trainable, changes={"retrain_min_new_labels": 3}, actor=erin, note="test"
    )

    def deliver_all():
        for message in Message.objects.filter(kind="label", status="pending").order_by("pk"):
            outbox.message_deliver(message_id=message.pk)

    labels_for(trainable, service, erin, alice, n=2)
    deliver_all()
    assert not RetrainingRun.objects.exists()
    labels_for(trainable, service, erin, alice, n=1, start=100)
    deliver_all()
    run = RetrainingRun.objects.get()
    newest = LabelRecord.objects.order_by("-pk").values_list("pk", flat=True)
    assert (run.trigger, run.status, run.label_cutoff) == ("automatic", "queued", newest[0])
    labels_for(trainable, service, erin, alice, n=3, start=200)
    deliver_all()
    assert RetrainingRun.objects.count() == 1  # one at a time
    retraining_execute(run_id=run.pk)
    assert retraining_sweep()["queued"] == 1  # three new labels since the cutoff
    assert RetrainingRun.objects.filter(status="queued").get().label_cutoff == newest[0]


def test_the_sweep_resends_waiting_runs_and_fails_runs_whose_worker_died(trainable, erin):
    run = retraining_request(model=trainable, actor=erin)
    RetrainingRun.objects.filter(pk=run.pk).update(
        requested_at=timezone.now() - timedelta(minutes=5)
    )
    assert retraining_sweep()["resent"] == 1  # eager: it ran (and failed: no labels)
    run.refresh_from_db()
    assert run.status == "failed"
    stuck = retraining_request(model=trainable, actor=erin)
    RetrainingRun.objects.filter(pk=stuck.pk).update(
        status="running", started_at=timezone.now() - timedelta(hours=2)
    )
    assert retraining_sweep()["failed"] == 1
    stuck.refresh_from_db()
    assert stuck.status == "failed" and "stopped" in stuck.error


def test_retrain_min_new_labels_is_a_policy_field_checked_like_the_others(tiny_model, erin):
    response = api(erin).put(
        "/api/v1/models/tiny/policy/", {"retrain_min_new_labels": -1}, format="json"
    )
    assert response.status_code == 400
    assert "retrain_min_new_labels" in response.json()["error"]["fields"]
    body = {"retrain_min_new_labels": 50, "note": "Retrain every 50 labels."}
    ok = api(erin).put("/api/v1/models/tiny/policy/", body, "json")
    assert ok.status_code == 200 and ok.json()["retrain_min_new_labels"] == 50
    client = Client()
    client.force_login(erin)
    assert "after every 50 new human labels" in client.get("/models/tiny/").content.decode()
