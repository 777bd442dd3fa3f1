"""The whole API, fuzzed from its own schema (schemathesis), as each kind of caller: a model
service, a reviewer, a senior reviewer, an auditor, a model owner. Any 5xx, any status the
operation does not document, any body, content type or header that does not match the schema
fails the run (issue 13: kept as a permanent check).

Bounded: EXAMPLES generated cases per operation and caller, derandomized (the same cases in
every run), sent in-process to the WSGI application against one world of objects: a model with
versions, decisions awaiting review and final, a task held by the reviewer, a gold item, an
appeal, an alert, an export and a signed checkpoint. Path parameters the generator draws as
numbers are mostly mapped onto that world's ids, so that operations are exercised past their
404s. Runs on PostgreSQL (the server suite, as CI does); the counts go to the terminal:
`cases run`, `5xx found`."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer as JSONRenderer
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from appeals import services as appeals
from appeals.models import Appeal
from audit.services import alert_raise, checkpoint_sign
from models_registry import services as registry
from oversight import services as oversight
from reviews import services as reviews
from reviews.models import Decision, ReviewTask
from tests.fixtures import item

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

EXAMPLES = 4
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
CALLERS = ("service", "alice", "carol", "dave", "erin")
TALLY: Counter = Counter()


def _published() -> dict:
    """The schema /api/schema/ serves (drf-spectacular's generator, as its view runs it)."""
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(JSONRenderer().render(generated))


schema = schemathesis.openapi.from_dict(_published())
# Django's WSGI handler, not config.wsgi: loading that would start the embedded periodic jobs
# (config.embedded) in the tests' process.
schema.app = get_wsgi_application()


@pytest.fixture(autouse=True)
def _one_connection():
    """The requests run in the test's transaction, as the test client's do: Django's handler
    would otherwise close the connection (it is not in autocommit) when each request ends."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture(scope="module", autouse=True)
def _counts(request):
    """The run's counts, on the terminal after the tests (and in CI's log)."""
    TALLY.clear()
    yield
    callers = "; ".join(
        f"{caller}: " + ", ".join(f"{TALLY[caller, k]} {k}" for k in ("2xx", "4xx", "5xx"))
        for caller in CALLERS
    )
    line = (
        f"schemathesis: {TALLY['cases run']} cases run, 5xx found: {TALLY['5xx found']} ({callers})"
    )
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line("\n" + line)


@dataclass
class Credentials:
    headers: dict[str, str]
    cookies: dict[str, str] = field(default_factory=dict)


@dataclass
class World:
    callers: dict[str, Credentials]
    ids: dict[str, list] = field(default_factory=dict)


CSRF_SECRET = "k" * 32  # a CSRF secret of our own: the cookie and the header agree


def _logged_in(user) -> Credentials:
    client = Client()
    client.force_login(user)
    cookies = {"sessionid": client.cookies["sessionid"].value, "csrftoken": CSRF_SECRET}
    return Credentials({"X-CSRFToken": CSRF_SECRET}, cookies)


@pytest.fixture
def world(tiny_model, service, alice, carol, dave, erin):
    registry.policy_update(model=tiny_model, changes={"review_all": True}, actor=erin, note="test")
    ingested = reviews.decisions_ingest(items=[item(n) for n in range(1, 7)], actor=service.user)
    decisions = [x.decision.pk for x in ingested]
    task = reviews.task_claim_next(reviewer=alice)
    # One settled by the model alone: appealed, and marked as a known answer.
    final = decisions[-1]
    ReviewTask.objects.filter(decision_id=final).update(state="cancelled")
    Decision.objects.filter(pk=final).update(
        status="final", final_outcome="approve", finalized_by="model", finalized_at=timezone.now()
    )
    decision = Decision.objects.get(pk=final)
    reviews.gold_mark(decision=decision, outcome="deny", actor=erin)
    appeal = appeals.appeal_file(
        decision=decision,
        grounds="My income was entered wrongly: it is 72, not 27.",
        actor=service.user,
        via=Appeal.Via.SERVICE,
    )
    alert = alert_raise(kind="test", message="Something to look at.")
    export = oversight.export_request(actor=dave, format="csv")  # queued: its job is not run
    checkpoint_sign()
    callers = {"service": Credentials({"Authorization": f"Token {service.token}"})}
    for user in (alice, carol, dave, erin):
        callers[user.username] = _logged_in(user)
    return World(
        callers,
        {
            "decision_id": decisions,
            "task_id": [task.pk, *ReviewTask.objects.values_list("pk", flat=True)],
            "name": ["tiny"],
            "number": [1],
            "alert_id": [alert.pk],
            "appeal_id": [appeal.pk],
            "export_id": [export.pk],
        },
    )


def _aimed(case, world: World) -> None:
    """Most numbers drawn for a path parameter become ids of the world (a third stay as drawn,
    mostly missing: the 404s)."""
    for name, value in list((case.path_parameters or {}).items()):
        known = world.ids.get(name)
        if not known:
            continue
        if isinstance(value, int) and value % 3:
            case.path_parameters[name] = known[value % len(known)]
        elif name == "name" and isinstance(value, str) and len(value) % 3:
            case.path_parameters[name] = known[0]


BOUNDED = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def _check(case, world: World, caller: str) -> None:
    _aimed(case, world)
    credentials = world.callers[caller]
    response = case.call(headers=credentials.headers, cookies=credentials.cookies)
    TALLY["cases run"] += 1
    TALLY["5xx found"] += response.status_code >= 500
    TALLY[caller, f"{response.status_code // 100}xx"] += 1
    case.validate_response(response, checks=CHECKS)


@pytest.mark.parametrize("caller", CALLERS)
@schema.parametrize()
@BOUNDED
def test_the_api_answers_every_generated_request_within_its_schema(case, caller, world):
    _check(case, world, caller)
