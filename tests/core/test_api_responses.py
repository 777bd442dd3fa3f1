"""Every response of the API matches the schema published at /api/schema/: its status is one the
operation documents, its content type and body the ones documented for that status (success
and error bodies alike). Objects are read as closed: a key the schema does not name is a drift.

CASES is the one table of requests, in the order they run against one world. An operation of
the schema without a success case and an error case fails test_every_operation_has_its_cases:
a new endpoint adds its rows here (and, if it needs objects, a line to `world`)."""

from __future__ import annotations

import copy
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from appeals.models import Appeal
from audit import note, witness
from audit.models import Checkpoint
from audit.services import alert_raise, checkpoint_sign
from models_registry import services as registry
from models_registry.models import MLModel
from outbox.models import Message
from oversight import monitoring
from oversight import services as oversight
from reviews import intake
from reviews import services as reviews
from reviews.api import DecisionInSerializer
from reviews.models import Decision, ReviewTask
from tests.fixtures import TINY_FEATURES, api, item

pytestmark = pytest.mark.django_db

MISSING = 999_999


@dataclass
class World:
    """The objects the cases act on; `prepare` steps add to it as the cases run."""

    users: dict
    service: Any
    decisions: list[int]
    artifact: bytes
    capture: Callable
    model_id: int
    ids: dict[str, int] = field(default_factory=dict)
    cosigner: str = ""  # the private key of the one witness the log knows

    def client(self, who: str | None):
        if who == "service":
            return self.service.client()
        return api(self.users[who] if who else None)

    def claim(self, who: str) -> None:
        self.ids["task"] = reviews.task_claim_next(reviewer=self.users[who]).pk

    def sign(self) -> None:
        checkpoint_sign()
        self.ids["size"] = Checkpoint.objects.order_by("-tree_size").first().tree_size

    def cosign(self) -> str:
        """The cosignature line of the one witness this world's log knows."""
        checkpoint = Checkpoint.objects.get(tree_size=self.ids["size"])
        text = note.open_note(checkpoint.note, note.vkey_for(settings.AUDIT_SIGNING_KEY))
        return witness.cosign(text, self.cosigner)

    def final(self) -> dict:
        """A decision the model settled alone (made so once), to issue codes and appeal."""
        if "final" not in self.ids:
            decision_id = self.decisions[1]
            ReviewTask.objects.filter(decision_id=decision_id).update(state="cancelled")
            Decision.objects.filter(pk=decision_id).update(
                status="final", final_outcome="approve", finalized_by="model",
                finalized_at=timezone.now(),
            )  # fmt: skip
            self.ids["final"] = decision_id
        return {"decision_id": self.ids["final"]}

    def appeal(self) -> int:
        return Appeal.objects.get(decision_id=self.ids["final"]).pk

    def trip(self) -> None:
        """The tiny model's review-all breaker, tripped by a drift finding."""
        finding = monitoring.Finding(kind="drift", message="PSI of income 0.40 is past 0.25.")
        monitoring.breaker_trip(model=MLModel.objects.get(pk=self.model_id), finding=finding)

    def dead_delivery(self) -> None:
        """A label delivery of the tiny model that died (after the last attempt)."""
        now = timezone.now()
        self.ids["dead"] = Message.objects.create(
            kind="label", key="label-dead-test", payload={}, scope=f"model:{self.model_id}",
            status="dead", attempts=8, next_attempt_at=now, created_at=now,
        ).pk  # fmt: skip

    def export(self, *, run: bool = True) -> None:
        if run:
            with self.capture(execute=True):
                export = oversight.export_request(actor=self.users["dave"], format="csv")
        else:  # its job is never handed over: it stays queued
            export = oversight.export_request(actor=self.users["dave"], format="csv")
        self.ids["export"] = export.pk


@pytest.fixture
def world(tiny_model, tiny_artifact, service, alice, bob, carol, dave, erin, frank,
          django_capture_on_commit_callbacks, settings) -> World:  # fmt: skip
    registry.policy_update(model=tiny_model, changes={"review_all": True}, actor=erin, note="test")
    ingested = reviews.decisions_ingest(items=[item(n) for n in range(1, 9)], actor=service.user)
    users = {u.username: u for u in (alice, bob, carol, dave, erin, frank)}
    w = World(users, service, [x.decision.pk for x in ingested], tiny_artifact,
              django_capture_on_commit_callbacks, tiny_model.pk)  # fmt: skip
    w.ids["alert"] = alert_raise(kind="test", message="Something to look at.").pk
    w.cosigner = note.generate_cosigner("witness.example.org/cases")
    settings.AUDIT_WITNESS_KEYS = [note.cosigner_vkey_for(w.cosigner)]
    return w


# --- the cases ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # as the schema names it
    status: int
    who: str | None  # one of the cast, "service" (its token), or None: anonymous
    at: Callable[[World], dict] = lambda w: {}  # path parameters
    query: dict = field(default_factory=dict)
    body: Any = None  # a dict, or a function of the world
    multipart: bool = False
    prepare: Callable[[World], None] | None = None

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path} {self.status} as {self.who}"


def get(path, status, who, **kw) -> Case:
    return Case("get", path, status, who, **kw)


def post(path, status, who, **kw) -> Case:
    return Case("post", path, status, who, **kw)


def put(path, status, who, **kw) -> Case:
    return Case("put", path, status, who, **kw)


def decision(w: World) -> dict:
    return {"decision_id": w.decisions[0]}


def task(w: World) -> dict:
    return {"task_id": w.ids["task"]}


def missing_task(w: World) -> dict:
    return {"task_id": MISSING}


TINY = {"name": "tiny"}
MODEL = {
    "name": "second",
    "labels": ["approve", "deny"],
    "favourable_label": "approve",
    "features": TINY_FEATURES,
    "protected_attributes": ["race"],
}
M, D, T = "/api/v1/models", "/api/v1/decisions", "/api/v1/review-tasks"
A, X = "/api/v1/audit", "/api/v1/exports"
COSIGN = f"{A}/checkpoints/{{size}}/cosignatures/"


def size(w: World) -> dict:
    return {"size": w.ids["size"]}


CASES = [
    # the audit trail, before any checkpoint is signed
    get(f"{A}/checkpoints/latest/", 404, "dave"),
    get(f"{A}/proofs/inclusion/", 404, "dave", query={"seq": "1"}),
    get(f"{A}/public-key/", 200, "dave", prepare=lambda w: w.sign()),
    get(f"{A}/public-key/", 403, "alice"),
    get(f"{A}/checkpoints/", 200, "service"),
    get(f"{A}/checkpoints/", 401, None),
    get(f"{A}/checkpoints/latest/", 200, "dave"),
    get(f"{A}/proofs/inclusion/", 200, "dave", query={"seq": "2"}),
    get(f"{A}/proofs/inclusion/", 400, "dave", query={"seq": "two"}),
    get(f"{A}/proofs/inclusion/", 409, "dave", query={"seq": "1", "size": str(MISSING)}),
    get(f"{A}/proofs/consistency/", 200, "dave", query={"from": "1", "to": "3"}),
    get(f"{A}/proofs/consistency/", 400, "dave", query={"from": "3", "to": "1"}),
    get(f"{A}/proofs/consistency/", 409, "dave", query={"from": "1", "to": str(MISSING)}),
    post(COSIGN, 201, "dave", at=size, body=lambda w: {"cosignature": w.cosign()}),
    post(COSIGN, 400, "dave", at=size, body={"cosignature": "— stranger.example/w AAAA"}),
    post(COSIGN, 404, "dave", at=lambda w: {"size": MISSING}, body={"cosignature": "— x AAAA"}),
    post(COSIGN, 403, "alice", at=size, body={"cosignature": "— stranger.example/w AAAA"}),
    # alerts
    get("/api/v1/alerts/", 200, "dave"),
    get("/api/v1/alerts/", 400, "dave", query={"state": "sleeping"}),
    get("/api/v1/alerts/", 403, "erin"),
    post("/api/v1/alerts/{alert_id}/acknowledge/", 200, "dave",
         at=lambda w: {"alert_id": w.ids["alert"]}, body={"note": "Looking."}),
    post("/api/v1/alerts/{alert_id}/acknowledge/", 409, "dave",
         at=lambda w: {"alert_id": w.ids["alert"]}, body={"note": "Again."}),
    post("/api/v1/alerts/{alert_id}/acknowledge/", 404, "dave", at=lambda w: {"alert_id": MISSING}),
    post("/api/v1/alerts/{alert_id}/resolve/", 400, "dave",
         at=lambda w: {"alert_id": w.ids["alert"]}, body={"note": ""}),
    post("/api/v1/alerts/{alert_id}/resolve/", 200, "dave",
         at=lambda w: {"alert_id": w.ids["alert"]}, body={"note": "A test."}),
    post("/api/v1/alerts/{alert_id}/resolve/", 403, "alice",
         at=lambda w: {"alert_id": w.ids["alert"]}, body={"note": "Mine."}),
    # the model registry
    get(f"{M}/", 200, "alice"),
    get(f"{M}/", 403, "frank"),
    post(f"{M}/", 201, "erin", body=MODEL),
    post(f"{M}/", 400, "erin", body={**MODEL, "name": "third", "labels": ["approve"]}),
    post(f"{M}/", 409, "erin", body=MODEL),
    post(f"{M}/", 403, "alice", body=MODEL),
    get(f"{M}/{{name}}/", 200, "service", at=lambda w: TINY),
    get(f"{M}/{{name}}/", 404, "erin", at=lambda w: {"name": "nope"}),
    get(f"{M}/{{name}}/card.md", 200, "dave", at=lambda w: TINY),
    get(f"{M}/{{name}}/card.md", 404, "dave", at=lambda w: {"name": "nope"}),
    get(f"{M}/{{name}}/card.md", 401, None, at=lambda w: TINY),
    get(f"{M}/{{name}}/policy/", 200, "alice", at=lambda w: TINY),
    get(f"{M}/{{name}}/policy/", 404, "alice", at=lambda w: {"name": "nope"}),
    put(f"{M}/{{name}}/policy/", 200, "erin", at=lambda w: TINY,
        body={"sla_hours": 24, "note": "Faster reviews."}),
    put(f"{M}/{{name}}/policy/", 400, "erin", at=lambda w: TINY,
        body={"confidence_treshold": 0.5}),
    put(f"{M}/{{name}}/policy/", 403, "alice", at=lambda w: TINY, body={"sla_hours": 24}),
    get(f"{M}/{{name}}/versions/", 200, "erin", at=lambda w: TINY),
    get(f"{M}/{{name}}/versions/", 404, "erin", at=lambda w: {"name": "nope"}),
    post(f"{M}/{{name}}/versions/", 201, "erin", at=lambda w: TINY, multipart=True,
         body=lambda w: {"artifact": SimpleUploadedFile("m.skops", w.artifact)}),
    post(f"{M}/{{name}}/versions/", 400, "erin", at=lambda w: TINY, multipart=True,
         body={"notes": "no artifact"}),
    post(f"{M}/{{name}}/versions/{{number}}/promote/", 409, "erin",
         at=lambda w: {"name": "tiny", "number": 2}),  # the gate: no holdout to measure it on
    post(f"{M}/{{name}}/versions/{{number}}/promote/", 200, "erin",
         at=lambda w: {"name": "tiny", "number": 2},
         body={"justification": "No holdout in this test world; promoting by hand."}),
    post(f"{M}/{{name}}/versions/{{number}}/promote/", 409, "erin",
         at=lambda w: {"name": "tiny", "number": 2}),
    post(f"{M}/{{name}}/versions/{{number}}/promote/", 404, "erin",
         at=lambda w: {"name": "tiny", "number": 99}),
    # the label loop
    get(f"{M}/{{name}}/labels/", 200, "service", at=lambda w: TINY),
    get(f"{M}/{{name}}/labels/", 404, "service", at=lambda w: {"name": "nope"}),
    get(f"{M}/{{name}}/labels.parquet", 200, "service", at=lambda w: TINY),
    get(f"{M}/{{name}}/labels.parquet", 404, "service", at=lambda w: {"name": "nope"}),
    get(f"{M}/{{name}}/retrain/", 200, "erin", at=lambda w: TINY),
    get(f"{M}/{{name}}/retrain/", 403, "alice", at=lambda w: TINY),
    post(f"{M}/{{name}}/retrain/", 202, "erin", at=lambda w: TINY),
    post(f"{M}/{{name}}/retrain/", 403, "alice", at=lambda w: TINY),
    get(f"{M}/{{name}}/webhook/", 204, "erin", at=lambda w: TINY),
    get(f"{M}/{{name}}/webhook/", 404, "erin", at=lambda w: {"name": "nope"}),
    put(f"{M}/{{name}}/webhook/", 200, "erin", at=lambda w: TINY,
        body={"url": "https://labels.example.org/hook", "secret": "s" * 24}),
    put(f"{M}/{{name}}/webhook/", 400, "erin", at=lambda w: TINY,
        body={"url": "https://labels.example.org/hook", "secret": "short"}),
    Case("delete", f"{M}/{{name}}/webhook/", 204, "erin", at=lambda w: TINY),
    Case("delete", f"{M}/{{name}}/webhook/", 404, "erin", at=lambda w: {"name": "nope"}),
    post(f"{M}/{{name}}/deliveries/{{message_id}}/resend/", 200, "erin",
         at=lambda w: {"name": "tiny", "message_id": w.ids["dead"]},
         prepare=lambda w: w.dead_delivery()),
    post(f"{M}/{{name}}/deliveries/{{message_id}}/resend/", 404, "erin",
         at=lambda w: {"name": "tiny", "message_id": MISSING}),
    # group reports, alerts and the breaker
    get("/api/v1/reports/overrides/", 200, "dave", query={"model": "tiny", "attribute": "race"}),
    get("/api/v1/reports/overrides/", 400, "dave", query={"attribute": "race"}),
    get("/api/v1/reports/overrides/", 403, "alice", query={"model": "tiny"}),
    get("/api/v1/reports/selection/", 200, "carol", query={"model": "tiny", "attribute": "sex"}),
    get("/api/v1/reports/selection/", 404, "dave", query={"model": "nope", "attribute": "sex"}),
    get("/api/v1/reports/drift/", 200, "dave", query={"model": "tiny"}),
    get("/api/v1/reports/drift/", 400, "dave", query={}),
    post("/api/v1/reports/evaluate/", 200, "dave", body={"model": "tiny"}),
    post("/api/v1/reports/evaluate/", 400, "dave", body={}),
    get("/api/v1/breakers/{name}/", 200, "carol", at=lambda w: TINY),
    get("/api/v1/breakers/{name}/", 404, "carol", at=lambda w: {"name": "nope"}),
    post("/api/v1/breakers/{name}/reset/", 400, "carol", at=lambda w: TINY, body={}),
    post("/api/v1/breakers/{name}/reset/", 200, "carol", at=lambda w: TINY,
         body={"note": "Checked the inputs; the shift was a data fix."},
         prepare=lambda w: w.trip()),
    post("/api/v1/breakers/{name}/reset/", 409, "carol", at=lambda w: TINY,
         body={"note": "Nothing is tripped now."}),
    # decisions
    post(f"{D}/", 201, "service", body=item(100)),
    post(f"{D}/", 200, "service", body=item(100)),
    post(f"{D}/", 409, "service", body=item(100, subject_ref="someone-else")),
    post(f"{D}/", 400, "service", body=item(101, features={"income": -5})),
    post(f"{D}/", 403, "dave", body=item(102)),
    post(f"{D}/bulk/", 201, "service", body={"items": [item(110), item(111)]}),
    post(f"{D}/bulk/", 200, "service", body={"items": [item(110)]}),
    post(f"{D}/bulk/", 400, "service", body={"items": []}),
    post(f"{D}/bulk/", 409, "service", body={"items": [item(110, subject_ref="other")]}),
    get(f"{D}/", 200, "dave"),
    get(f"{D}/", 200, "carol", query={"status": "pending_review"}),
    get(f"{D}/", 400, "dave", query={"status": "lost"}),
    get(f"{D}/", 403, "alice"),
    get(f"{D}/{{decision_id}}/", 200, "erin", at=decision),
    get(f"{D}/{{decision_id}}/", 404, "dave", at=lambda w: {"decision_id": MISSING}),
    get(f"{D}/{{decision_id}}/proof/", 200, "service", at=decision),
    get(f"{D}/{{decision_id}}/proof/", 403, "carol", at=decision),
    # a known answer is marked on a final decision (a pending one is a 409 too)
    post(f"{D}/{{decision_id}}/gold/", 201, "erin", at=lambda w: w.final(),
         body={"outcome": "deny"}),
    post(f"{D}/{{decision_id}}/gold/", 409, "erin", at=lambda w: w.final(),
         body={"outcome": "deny"}),
    post(f"{D}/{{decision_id}}/gold/", 400, "erin", at=decision, body={"outcome": "maybe"}),
    post(f"{D}/{{decision_id}}/gold/", 404, "erin", at=lambda w: {"decision_id": MISSING},
         body={"outcome": "deny"}),
    # the review queue
    post(f"{T}/claim/", 200, "alice"),
    post(f"{T}/claim/", 204, "alice", body={"model": "nope"}),
    post(f"{T}/claim/", 400, "alice", body={"kind": "bogus"}),
    post(f"{T}/claim/", 403, "dave"),
    get(f"{T}/", 200, "alice"),
    get(f"{T}/", 403, "dave"),
    get(f"{T}/{{task_id}}/", 200, "alice", at=task, prepare=lambda w: w.claim("alice")),
    get(f"{T}/{{task_id}}/", 404, "bob", at=task),
    post(f"{T}/{{task_id}}/renew/", 200, "alice", at=task),
    post(f"{T}/{{task_id}}/renew/", 409, "bob", at=task),
    post(f"{T}/{{task_id}}/renew/", 404, "alice", at=missing_task),
    post(f"{T}/{{task_id}}/release/", 200, "alice", at=task),
    post(f"{T}/{{task_id}}/release/", 409, "alice", at=task),
    post(f"{T}/{{task_id}}/escalate/", 201, "alice", at=task, body={"note": "Unsure."},
         prepare=lambda w: w.claim("alice")),
    post(f"{T}/{{task_id}}/escalate/", 400, "alice", at=task, body={}),
    post(f"{T}/{{task_id}}/escalate/", 409, "bob", at=task, body={"note": "Not mine."}),
    post(f"{T}/{{task_id}}/decision/", 400, "bob", at=task, body={"verdict": "override"},
         prepare=lambda w: w.claim("bob")),
    post(f"{T}/{{task_id}}/decision/", 201, "bob", at=task, body={"verdict": "agree"}),
    post(f"{T}/{{task_id}}/decision/", 409, "bob", at=task, body={"verdict": "agree"}),
    post(f"{T}/{{task_id}}/decision/", 404, "bob", at=missing_task, body={"verdict": "agree"}),
    get("/api/v1/review-stats/", 200, "carol"),
    get("/api/v1/review-stats/", 400, "dave", query={"days": "many"}),
    get("/api/v1/review-stats/", 403, "alice"),
    # the person's side: access codes, notices, appeals
    post(f"{D}/{{decision_id}}/access-code/", 201, "service", at=lambda w: w.final()),
    post(f"{D}/{{decision_id}}/access-code/", 404, "service",
         at=lambda w: {"decision_id": MISSING}),
    get(f"{D}/{{decision_id}}/notice/", 200, "service", at=lambda w: w.final()),
    get(f"{D}/{{decision_id}}/notice/", 403, "alice", at=lambda w: w.final()),
    post(f"{D}/{{decision_id}}/appeal/", 400, "service", at=lambda w: w.final(),
         body={"grounds": "Too short."}),
    post(f"{D}/{{decision_id}}/appeal/", 201, "service", at=lambda w: w.final(),
         body={"grounds": "My income was entered wrongly; it is 72, not 27."}),
    post(f"{D}/{{decision_id}}/appeal/", 409, "service", at=lambda w: w.final(),
         body={"grounds": "My income was entered wrongly; it is 72, not 27."}),
    get("/api/v1/appeals/", 200, "carol"),
    get("/api/v1/appeals/", 403, "alice"),
    get("/api/v1/appeals/{appeal_id}/", 200, "dave", at=lambda w: {"appeal_id": w.appeal()}),
    get("/api/v1/appeals/{appeal_id}/", 404, "dave", at=lambda w: {"appeal_id": MISSING}),
    post("/api/v1/appeals/{appeal_id}/decision/", 409, "carol",
         at=lambda w: {"appeal_id": w.appeal()}, body={"result": "upheld", "reasons": "Checked."}),
    post("/api/v1/appeals/{appeal_id}/decision/", 200, "carol",
         at=lambda w: {"appeal_id": w.appeal()},
         body={"result": "upheld", "reasons": "The income on file matches the pay slips."},
         prepare=lambda w: w.claim("carol")),
    # exports
    post(f"{X}/", 202, "dave", body={"format": "jsonl"}),
    post(f"{X}/", 400, "service", body={"format": "csv", "include_bundle": True}),
    post(f"{X}/", 403, "alice", body={"format": "csv"}),
    get(f"{X}/{{export_id}}/", 200, "dave", at=lambda w: {"export_id": w.ids["export"]},
        prepare=lambda w: w.export()),
    get(f"{X}/{{export_id}}/", 404, "service", at=lambda w: {"export_id": w.ids["export"]}),
    get(f"{X}/{{export_id}}/download/", 200, "dave",
        at=lambda w: {"export_id": w.ids["export"]}),
    get(f"{X}/{{export_id}}/download/", 404, "dave", at=lambda w: {"export_id": MISSING}),
    get(f"{X}/{{export_id}}/download/", 409, "dave", at=lambda w: {"export_id": w.ids["export"]},
        prepare=lambda w: w.export(run=False)),
]  # fmt: skip


# --- checking them -----------------------------------------------------------------------------


def _served_schema() -> dict:
    response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return json.loads(response.content)


def closed(schema: dict) -> dict:
    """The schema with every object that names its properties closed to others, so that a key
    the schema does not document fails validation."""
    schema = copy.deepcopy(schema)

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("properties"), dict) and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    return schema


def _operations(schema: dict) -> set[tuple[str, str]]:
    return {(path, method) for path, ops in schema["paths"].items() for method in ops}


def test_every_operation_has_its_cases():
    operations = _operations(_served_schema())
    statuses = defaultdict(set)
    for case in CASES:
        statuses[case.path, case.method].add(case.status)
    unknown = sorted(set(statuses) - operations)
    assert not unknown, f"cases for operations the schema does not have: {unknown}"
    wanted = {"a success case": set(range(200, 300)), "an error case": set(range(400, 600))}
    lacking = [
        f"{method.upper()} {path}: {what}"
        for path, method in sorted(operations)
        for what, codes in wanted.items()
        if not statuses[path, method] & codes
    ]
    assert not lacking, "operations without their cases:\n" + "\n".join(lacking)


def _send(w: World, case: Case):
    params = case.at(w)
    url = case.path.format(**params)
    body = case.body(w) if callable(case.body) else case.body
    client = w.client(case.who)
    method = getattr(client, case.method)
    if case.method == "get":
        return method(url, case.query), url, params
    return method(url, body, format="multipart" if case.multipart else "json"), url, params


def _content(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_every_response_matches_the_published_schema(world, subtests):
    openapi = OpenAPI.from_dict(closed(_served_schema()))
    for case in CASES:
        with subtests.test(msg=str(case)):
            if case.prepare:
                case.prepare(world)
            response, url, params = _send(world, case)
            content = _content(response)
            assert response.status_code == case.status, content[:500]
            request = MockRequest(
                "http://testserver", case.method, url, path_pattern=case.path, args=case.query,
                view_args=params,
            )  # fmt: skip
            content_type = response.get("Content-Type", "application/json").split(";")[0]
            openapi.validate_response(
                request, MockResponse(content, response.status_code, content_type=content_type)
            )


def test_the_documented_decision_body_is_the_one_intake_reads():
    """A prediction's fields are documented by DecisionInSerializer and read by reviews.intake
    (which checks them against the model's schema): the two lists are one."""
    assert set(DecisionInSerializer().fields) == intake.ITEM_KEYS
