"""What each viewer sees of a decision, read from the bytes of every page and API response that
shows one (and its history, events and exports): nothing hidden from them appears anywhere.

Hidden from a reviewer or senior under blind review (holding the blind task, or who may still be
given it): the model's outcome, confidence, probabilities, margin, explanation and the rules
that test the answer. The outcome is one of the model's labels, and a blind reviewer's form
lists every label: so the labels must be shown evenly (a page that shows one label more often
than the other has told the answer). Hidden from everyone but auditors: protected attributes.

LOOKS is the one table of what shows a decision: a new page or endpoint that shows one adds its
row (and a new kind of viewer its VIEWERS entry)."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow.parquet as pq
import pytest
from django.test import Client

from audit.models import AuditEvent
from audit.services import checkpoint_sign
from core import roles as r
from models_registry import services as registry
from reviews import services as reviews
from reviews.models import Decision, ReviewTask
from tests.fixtures import TINY_FEATURES, api, item, make_user

pytestmark = pytest.mark.django_db

# The model's answer, in every form it could take on a page or in a body.
OUTCOME, OTHER = "verdict-kestrel", "verdict-plover"
CONFIDENCE = 0.87310472
MODEL_SECRETS = [
    "0.87310472",  # the confidence, and the outcome's probability
    "87.3%",  # the confidence as the case page prints it
    "0.126895",  # the other label's probability
    "0.746209",  # the margin
    "0.41421356",  # an explanation contribution
    "0.414",  # ...as the case page prints it
    "expl-note-quokka",  # the explanation's note
    "answer-rule-wren",  # a high-stakes rule on the model's answer (that it fired says it)
]
GROUPS = {"race": "grp-zeta", "sex": "grp-omega"}
GROUP_SECRETS = list(GROUPS.values())
EXPLANATION = {
    "method": "client-shap",
    "towards": OUTCOME,
    "note": "expl-note-quokka",
    "contributions": [{"feature": "income", "value": 120.0, "contribution": 0.41421356}],
    "counterfactual": {"feature": "income", "from": 120.0, "to": 5.0, "outcome": OTHER},
}
RULES = [
    {"name": "answer-rule-wren", "when": {"field": "outcome", "op": "in",
                                          "value": [OUTCOME, OTHER]}},
    {"name": "income-rule", "when": {"field": "income", "op": "gt", "value": 100}},
]  # fmt: skip


# --- the viewers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Viewer:
    user: str
    blind: bool  # the decisions await blind review that this viewer holds or may be given
    groups: bool = False  # may see protected attributes
    reviews: bool = False  # works the queue (claims, answers)


VIEWERS = {
    # holds the blind tasks it claims
    "blind_reviewer": Viewer("alice", blind=True, reviews=True),
    # a senior reads every decision; before claiming, may still be given the blind task
    "blind_senior": Viewer("carol", blind=True, reviews=True),
    "reviewer": Viewer("bob", blind=False, reviews=True),
    "senior": Viewer("carol", blind=False, reviews=True),
    "auditor": Viewer("dave", blind=False, groups=True),
    "model_owner": Viewer("erin", blind=False),
    "model_service": Viewer("scorer", blind=False),
}
ROLES = {
    "alice": r.REVIEWER,
    "bob": r.REVIEWER,
    "carol": r.SENIOR_REVIEWER,
    "dave": r.AUDITOR,
    "erin": r.MODEL_OWNER,
    "scorer": r.MODEL_SERVICE,
}
REVIEWERS = {name for name, viewer in VIEWERS.items() if viewer.reviews}
SENIORS_AND_AUDITORS = {"blind_senior", "senior", "auditor"}
READERS = {"blind_senior", "senior", "auditor", "model_owner", "model_service"}
EXPORTERS = {"auditor", "model_service"}


@dataclass
class World:
    """Decisions awaiting (blind, or not) review, one of them held by someone else (olga); the
    viewer's clients; what the looks have found so far (the task the viewer holds)."""

    viewer: Viewer
    decisions: list
    other_task: int
    api: object
    page: Client
    mine: int = 0
    export: dict = field(default_factory=dict)

    @property
    def d1(self) -> int:
        return self.decisions[0].pk


def world(name: str) -> World:
    viewer = VIEWERS[name]
    users = {username: make_user(username, role) for username, role in ROLES.items()}
    olga = make_user("olga", r.REVIEWER)
    registry.model_register(
        name="leaky",
        labels=[OUTCOME, OTHER],
        favourable_label=OUTCOME,
        features=TINY_FEATURES,
        protected_attributes=list(GROUPS),
        card={"intended_use": "Tests."},
        owner=users["erin"],
        services=[users["scorer"]],
        policy={
            "confidence_threshold": 0.95,
            "random_audit_rate": 0.0,
            "review_all": True,
            "blind_review": viewer.blind,
            "reviewers_required": 2,
            "high_stakes": RULES,
        },
        actor=users["erin"],
    )
    items = [_sent(n) for n in range(1, 4)]
    decisions = [x.decision for x in reviews.decisions_ingest(items=items, actor=users["scorer"])]
    other = reviews.task_claim_next(reviewer=olga)
    checkpoint_sign()
    page = Client()
    page.force_login(users[viewer.user])
    return World(viewer, decisions, other.pk, api(users[viewer.user]), page)


# --- what shows a decision ---------------------------------------------------------------------


@dataclass(frozen=True)
class Look:
    name: str
    method: str
    url: Callable[[World], str]
    admits: frozenset[str]  # viewers who get it (2xx, or `status`); others are refused
    body: Callable[[World], dict] | None = None
    page: bool = False  # a page, with the session; else the API
    status: int | None = None  # what an admitted viewer gets, when not a 2xx
    after: Callable[[World, object], None] | None = None  # note what it returned
    answers: bool = False  # the viewer answers: the model's answer is theirs to see now


def _claimed(w: World, response) -> None:
    # Viewers who cannot claim look at olga's task instead (auditors may open any task).
    w.mine = response.json()["id"] if response.status_code == 200 else w.other_task


def _exported(w: World, response) -> None:
    w.export = response.json() if response.status_code == 202 else {"id": 0}


def _answer(w: World) -> dict:
    if w.viewer.blind:
        return {"outcome": OTHER, "rationale": "Debt is high."}
    return {"verdict": "agree"}


def _sent(n: int) -> dict:
    return item(n, model="leaky", groups=GROUPS, outcome=OUTCOME, confidence=CONFIDENCE,
                explanation=EXPLANATION)  # fmt: skip


def _export_looks(fmt: str) -> list[Look]:
    return [
        Look(f"export {fmt}", "post", lambda w: "/api/v1/exports/", frozenset(EXPORTERS),
             body=lambda w: {"format": fmt}, after=_exported),
        Look(f"export {fmt} detail", "get", lambda w: f"/api/v1/exports/{w.export['id']}/",
             frozenset(EXPORTERS)),
        Look(f"export {fmt} file", "get",
             lambda w: f"/api/v1/exports/{w.export['id']}/download/", frozenset(EXPORTERS)),
    ]  # fmt: skip


ALL = frozenset(VIEWERS)
LOOKS = [
    # reading, before the viewer holds anything
    Look("decision list", "get", lambda w: "/api/v1/decisions/", frozenset(READERS)),
    Look("decision detail", "get", lambda w: f"/api/v1/decisions/{w.d1}/", frozenset(READERS)),
    Look("decision list by reason", "get",
         lambda w: "/api/v1/decisions/?reason=high_stakes&status=pending_review&routed=true",
         frozenset(READERS)),
    Look("decision notice", "get", lambda w: f"/api/v1/decisions/{w.d1}/notice/",
         frozenset(READERS)),
    Look("decision proof", "get", lambda w: f"/api/v1/decisions/{w.d1}/proof/",
         frozenset(EXPORTERS)),
    Look("someone else's task", "get", lambda w: f"/api/v1/review-tasks/{w.other_task}/",
         frozenset(SENIORS_AND_AUDITORS)),
    Look("someone else's case page", "get", lambda w: f"/review/tasks/{w.other_task}/",
         frozenset(SENIORS_AND_AUDITORS), page=True),
    Look("queue page", "get", lambda w: "/review/", frozenset(REVIEWERS), page=True),
    Look("stats page", "get", lambda w: "/review/stats/", frozenset(SENIORS_AND_AUDITORS),
         page=True),
    Look("stats", "get", lambda w: "/api/v1/review-stats/", frozenset(SENIORS_AND_AUDITORS)),
    Look("audit decision page", "get", lambda w: f"/audit/decisions/{w.d1}/",
         frozenset({"auditor"}), page=True),
    Look("audit home", "get", lambda w: "/audit/", frozenset({"auditor"}), page=True),
    Look("audit events", "get", lambda w: f"/audit/events/?object_id={w.d1}",
         frozenset({"auditor"}), page=True),
    Look("audit find", "get", lambda w: f"/audit/decisions/?q={w.d1}", frozenset({"auditor"}),
         page=True, status=302),
    Look("task list", "get", lambda w: "/review/tasks/", frozenset(SENIORS_AND_AUDITORS),
         page=True),
    Look("task list by reason", "get", lambda w: "/review/tasks/?reason=high_stakes",
         frozenset(SENIORS_AND_AUDITORS), page=True),
    Look("task list find", "get", lambda w: f"/review/tasks/?find={w.d1}",
         frozenset(SENIORS_AND_AUDITORS), page=True),
    Look("reviewer stats page", "get", lambda w: "/review/stats/olga/",
         frozenset(SENIORS_AND_AUDITORS), page=True),
    Look("model activity page", "get", lambda w: "/models/leaky/activity/",
         frozenset({"auditor", "model_owner"}), page=True),
    Look("policy what-if", "post", lambda w: "/models/leaky/policy/what-if/",
         frozenset({"auditor", "model_owner"}), page=True, body=lambda w: WHAT_IF),
    # working a task: claim, look, renew, a refused answer, release, claim, escalate
    Look("claim", "post", lambda w: "/api/v1/review-tasks/claim/", frozenset(REVIEWERS),
         after=_claimed),
    Look("my tasks", "get", lambda w: "/api/v1/review-tasks/", frozenset(REVIEWERS)),
    Look("my task", "get", lambda w: f"/api/v1/review-tasks/{w.mine}/",
         frozenset(REVIEWERS | {"auditor"})),
    Look("my case page", "get", lambda w: f"/review/tasks/{w.mine}/",
         frozenset(REVIEWERS | {"auditor"}), page=True),
    Look("renew", "post", lambda w: f"/api/v1/review-tasks/{w.mine}/renew/",
         frozenset(REVIEWERS)),
    Look("answer refused on the page", "post", lambda w: f"/review/tasks/{w.mine}/decide/",
         frozenset(REVIEWERS), page=True, status=400,
         body=lambda w: {"verdict": "override", "outcome": OTHER, "rationale": ""}),
    Look("release", "post", lambda w: f"/api/v1/review-tasks/{w.mine}/release/",
         frozenset(REVIEWERS)),
    Look("claim again", "post", lambda w: "/api/v1/review-tasks/claim/", frozenset(REVIEWERS),
         after=_claimed),
    Look("escalate", "post", lambda w: f"/api/v1/review-tasks/{w.mine}/escalate/",
         frozenset(REVIEWERS), body=lambda w: {"note": "Unsure."}),
    # exports, and the service's own sending
    *_export_looks("csv"),
    *_export_looks("jsonl"),
    *_export_looks("parquet"),
    Look("exports page", "get", lambda w: "/audit/exports/", frozenset({"auditor"}), page=True),
    Look("export file from the page", "get",
         lambda w: f"/audit/exports/{w.export['id']}/download/", frozenset({"auditor"}),
         page=True),
    Look("send a decision", "post", lambda w: "/api/v1/decisions/", frozenset({"model_service"}),
         body=lambda w: _sent(50)),
    Look("send in bulk", "post", lambda w: "/api/v1/decisions/bulk/",
         frozenset({"model_service"}), body=lambda w: {"items": [_sent(51), _sent(52)]}),
    # answering, last: the answer shows the answerer the model's answer to that decision
    Look("claim to answer", "post", lambda w: "/api/v1/review-tasks/claim/",
         frozenset(REVIEWERS), after=_claimed),
    Look("answer", "post", lambda w: f"/api/v1/review-tasks/{w.mine}/decision/",
         frozenset(REVIEWERS), body=_answer, answers=True),
    Look("my recent answers", "get", lambda w: "/review/", frozenset(REVIEWERS), page=True,
         answers=True),
    # a senior's adjudication page, of someone else's escalation
    Look("adjudication page", "get", lambda w: f"/review/tasks/{_adjudication(w)}/",
         frozenset(SENIORS_AND_AUDITORS), page=True),
]  # fmt: skip

WHAT_IF = {
    "confidence_threshold": "0.5", "high_stakes": json.dumps(RULES), "random_audit_rate": "10",
    "active_learning_budget": "0", "active_learning_max_margin": "0.2",
    "reviewers_required": "2", "sla_hours": "48", "last": "500",
}  # fmt: skip


def _adjudication(w: World) -> int:
    """Another reviewer escalates a task of a decision the viewer never had a task of (whose
    model answer a blind viewer must not see): a senior's adjudication opens on it."""
    oscar = make_user("oscar", r.REVIEWER)
    viewer = ROLES.get(w.viewer.user) and w.page.session.get("_auth_user_id")
    touched = set(
        ReviewTask.objects.filter(assignee_id=viewer).values_list("decision_id", flat=True)
    )
    held = []
    while (task := reviews.task_claim_next(reviewer=oscar)) is not None:
        if task.decision_id not in touched:
            for other in held:
                reviews.task_release(task_id=other.pk, reviewer=oscar)
            return reviews.task_escalate(task_id=task.pk, reviewer=oscar, note="Unsure.").pk
        held.append(task)
    raise AssertionError("no decision left that the viewer never had a task of")


# What some viewers must find (the looks reach the data: a hidden value is hidden, not absent).
SHOWN = {
    ("auditor", "decision detail"): [*GROUP_SECRETS, "0.87310472", "0.41421356"],
    ("auditor", "decision list"): GROUP_SECRETS,
    ("auditor", "export csv file"): [*GROUP_SECRETS, "0.87310472"],
    ("auditor", "export parquet file"): GROUP_SECRETS,
    ("auditor", "audit decision page"): ["0.87310472", OUTCOME],
    ("auditor", "someone else's case page"): ["87.3%", "0.414", OUTCOME],
    ("model_service", "decision proof"): ["0.87310472"],
    ("model_service", "export jsonl file"): ["0.87310472", OUTCOME],
    ("model_owner", "decision detail"): ["0.87310472", "answer-rule-wren"],
    ("reviewer", "my case page"): ["87.3%", "0.414", f"Agree: {OUTCOME}"],
    ("reviewer", "claim"): ["0.87310472", "expl-note-quokka", "answer-rule-wren"],
    ("senior", "decision detail"): ["0.87310472", "0.746209"],
    ("blind_reviewer", "answer"): [OUTCOME],
    ("blind_senior", "answer"): [OUTCOME],
    ("auditor", "policy what-if"): [*GROUP_SECRETS, "What if"],
    ("model_owner", "policy what-if"): ["What if"],
    ("senior", "task list"): ["Case ", "high stakes"],
    ("senior", "adjudication page"): ["87.3%", "Escalated by oscar"],
    ("auditor", "adjudication page"): ["87.3%", "Escalated by oscar"],
    ("blind_senior", "adjudication page"): ["Escalated by oscar"],
    ("reviewer", "my recent answers"): ["Your recent answers", OUTCOME],
    ("model_owner", "model activity page"): ["Why decisions went to a person"],
}


# --- reading the bytes ---------------------------------------------------------------------------


def _fetch(w: World, look: Look):
    body = look.body(w) if look.body else None
    if look.page:
        return getattr(w.page, look.method)(look.url(w), body or {})
    return getattr(w.api, look.method)(look.url(w), body, format="json")


def _text(response) -> str:
    """Everything in the response a person could read: the body, or for a file, the text of
    every file in it (a zip's members; Parquet as its rows)."""
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    if not raw.startswith(b"PK"):
        return raw.decode("utf-8", "replace")
    parts = []
    with zipfile.ZipFile(io.BytesIO(raw)) as package:
        for name in package.namelist():
            data = package.read(name)
            if name.endswith(".parquet"):
                rows = pq.read_table(io.BytesIO(data)).to_pylist()
                data = json.dumps(rows, default=str).encode()
            parts.append(data.decode("utf-8", "replace"))
    return "\n".join(parts)


def _leaks(text: str, viewer: Viewer, look: Look) -> list[str]:
    found = [] if viewer.groups else [s for s in GROUP_SECRETS if s in text]
    if viewer.blind and not look.answers:
        found += [s for s in MODEL_SECRETS if s in text]
        counts = {label: len(re.findall(re.escape(label), text)) for label in (OUTCOME, OTHER)}
        if counts[OUTCOME] != counts[OTHER]:
            found.append(f"the labels, shown unevenly: {counts}")
    return found


@pytest.mark.parametrize("name", VIEWERS)
def test_nothing_hidden_from_a_viewer_appears_in_what_they_are_shown(
    name, django_capture_on_commit_callbacks
):
    w = world(name)
    problems = []
    for look in LOOKS:
        with django_capture_on_commit_callbacks(execute=True):  # exports run after commit
            response = _fetch(w, look)
        if look.after:
            look.after(w, response)
        admitted = name in look.admits
        code = response.status_code
        ok = code == look.status if look.status else code < 300
        if (admitted and not ok) or (not admitted and code < 400):
            problems.append(f"{look.name}: status {response.status_code} for {name}")
            continue
        text = _text(response)
        problems += [f"{look.name}: shows {leak}" for leak in _leaks(text, w.viewer, look)]
        missing = [s for s in SHOWN.get((name, look.name), []) if s not in text]
        problems += [f"{look.name}: does not show {s} (the look misses the data)" for s in missing]
    assert not problems, "\n".join(problems)


def test_the_case_page_is_given_the_decision_as_seen_and_a_history_without_payloads():
    """What a template is given is what it may print: a blind reviewer's case page gets the
    decision as they may see it, and the history as time, action and actor (the intake's
    event holds the model's answer and confidence), never a Decision, task or event."""
    w = world("blind_reviewer")
    mine = w.api.post("/api/v1/review-tasks/claim/").json()["id"]
    rendered = w.page.get(f"/review/tasks/{mine}/").context
    context = {key: rendered[key] for key in rendered.keys()}  # noqa: SIM118 (a list of contexts)
    given = [*context.values(), *context["history"], *context["task"].values()]
    assert not [v for v in given if isinstance(v, Decision | ReviewTask | AuditEvent)]
    assert {"decision.ingested", "task.claimed"} <= {e["action"] for e in context["history"]}
    assert all(set(entry) == {"seq", "time", "action", "actor"} for entry in context["history"])
    assert context["decision"]["model_hidden"] is True
    assert not {"model_outcome", "confidence", "explanation"} & set(context["decision"])
