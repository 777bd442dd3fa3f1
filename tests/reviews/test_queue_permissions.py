"""Who may do what with a review task, in the API and on the pages.

Bob holds the task. Alice is another reviewer, Carol a senior reviewer, Dave an auditor, Erin
owns the model. A reviewer acting on a task they do not hold is told the lease is not theirs
(409: task ids are not secret among reviewers); anyone without the role learns nothing."""

from __future__ import annotations

import pytest
from django.test import Client

from reviews.models import ReviewTask
from reviews.services import decisions_ingest
from tests.fixtures import api, item
from tests.reviews.test_queue import CLAIM, routed

pytestmark = pytest.mark.django_db

CAST = ("anonymous", "alice", "carol", "dave", "erin", "bob")  # the holder acts last
TASK = "/api/v1/review-tasks/{task}/"
ANSWER = {"verdict": "agree", "note": "Please look."}

API = {
    "task detail": ("get", TASK, dict(anonymous=401, alice=404, carol=200, dave=200, erin=403,
                                      bob=200)),
    "claim": ("post", CLAIM, dict(anonymous=401, alice=200, carol=200, dave=403, erin=403,
                                  bob=200)),
    "release": ("post", TASK + "release/", dict(anonymous=401, alice=409, carol=409, dave=403,
                                                erin=403, bob=200)),
    "renew": ("post", TASK + "renew/", dict(anonymous=401, alice=409, carol=409, dave=403,
                                            erin=403, bob=200)),
    "escalate": ("post", TASK + "escalate/", dict(anonymous=401, alice=409, carol=409, dave=403,
                                                  erin=403, bob=201)),
    "decision submit": ("post", TASK + "decision/", dict(anonymous=401, alice=409, carol=409,
                                                         dave=403, erin=403, bob=201)),
    "gold marking": ("post", "/api/v1/decisions/{final}/gold/", dict(
        anonymous=401, alice=403, carol=403, dave=403, erin=201, bob=403)),
    "stats": ("get", "/api/v1/review-stats/", dict(anonymous=401, alice=403, carol=200, dave=200,
                                                   erin=403, bob=403)),
}  # fmt: skip

PAGE = "/review/tasks/{task}/"
LOGIN, QUEUE, NEXT_CASE = "login", "/review/", "case"
PAGES = {
    "case page": ("get", PAGE, dict(anonymous=LOGIN, alice=404, carol=200, dave=200, erin=403,
                                    bob=200)),
    "start reviewing": ("post", "/review/next/", dict(anonymous=LOGIN, alice=NEXT_CASE,
                                                      carol=NEXT_CASE, dave=403, erin=403,
                                                      bob=NEXT_CASE)),
    "release": ("post", PAGE + "release/", dict(anonymous=LOGIN, alice=QUEUE, carol=QUEUE,
                                                dave=403, erin=403, bob=QUEUE)),
    "renew": ("post", PAGE + "renew/", dict(anonymous=LOGIN, alice=QUEUE, carol=QUEUE, dave=403,
                                            erin=403, bob=NEXT_CASE)),
    "escalate": ("post", PAGE + "escalate/", dict(anonymous=LOGIN, alice=409, carol=409,
                                                  dave=403, erin=403, bob=NEXT_CASE)),
    "decide": ("post", PAGE + "decide/", dict(anonymous=LOGIN, alice=409, carol=409, dave=403,
                                              erin=403, bob=NEXT_CASE)),
    "stats": ("get", "/review/stats/", dict(anonymous=LOGIN, alice=403, carol=200, dave=200,
                                            erin=403, bob=403)),
}  # fmt: skip


@pytest.fixture
def cast(alice, bob, carol, dave, erin):
    return {"anonymous": None, "alice": alice, "bob": bob, "carol": carol, "dave": dave,
            "erin": erin}  # fmt: skip


@pytest.fixture
def held(tiny_model, service, erin, bob):
    """Bob holds a task of the first of five decisions waiting for review; a sixth, sent
    before, was final at once (a known answer is marked on a final decision)."""
    (final,) = decisions_ingest(items=[item(99)], actor=service.user)
    assert final.decision.status == "final"
    routed(tiny_model, service, erin, n=5)
    task = api(bob).post(CLAIM).json()
    return {"task": task["id"], "decision": task["decision"]["id"], "final": final.decision.pk}


def _still_bobs(held, bob) -> bool:
    task = ReviewTask.objects.get(pk=held["task"])
    return (task.state, task.assignee) == ("claimed", bob)


@pytest.mark.parametrize("endpoint", list(API))
def test_the_api_lets_each_role_do_only_its_part(endpoint, held, cast):
    method, path, expected = API[endpoint]
    url = path.format(**held)
    body = {"outcome": "approve"} if endpoint == "gold marking" else ANSWER
    for name in CAST:
        response = getattr(api(cast[name]), method)(url, body, format="json")
        assert response.status_code == expected[name], (endpoint, name, response.content)
        if expected[name] == 409:
            assert response.json()["error"]["code"] == "lease_lost"
        if name != "bob" and endpoint != "claim":
            assert _still_bobs(held, cast["bob"]), (endpoint, name)


def _lands_on(response, expected) -> bool:
    if expected == LOGIN:
        return response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    if expected == QUEUE:
        return response.status_code == 302 and response["Location"] == QUEUE
    if expected == NEXT_CASE:
        return response.status_code == 302 and response["Location"].startswith("/review/tasks/")
    return response.status_code == expected


@pytest.mark.parametrize("page", list(PAGES))
def test_the_pages_let_each_role_do_only_its_part(page, held, cast):
    method, path, expected = PAGES[page]
    url = path.format(**held)
    for name in CAST:
        client = Client()
        if cast[name] is not None:
            client.force_login(cast[name])
        response = getattr(client, method)(url, ANSWER)
        assert _lands_on(response, expected[name]), (page, name, response.status_code)
        if name != "bob" and page != "start reviewing":
            assert _still_bobs(held, cast["bob"]), (page, name)
