"""A reviewer who lost their lease is told so clearly, in the API and on the pages, and keeps
what they typed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from reviews.models import Review, ReviewTask
from tests.fixtures import api
from tests.reviews.test_queue import CLAIM, routed

pytestmark = pytest.mark.django_db

RATIONALE = "Income was verified by phone; the model missed it."


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def expire(task_id: int) -> None:
    ReviewTask.objects.filter(pk=task_id).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


def test_it_shows_back_the_rationale_when_the_lease_expired_before_the_answer(
    tiny_model, service, erin, alice, bob
):
    routed(tiny_model, service, erin, n=2)
    task_id = api(alice).post(CLAIM).json()["id"]
    expire(task_id)
    assert api(bob).post(CLAIM).json()["id"] == task_id  # a lazy claim reopened and took it
    answer = {"verdict": "override", "outcome": "deny", "reason_code": "model_error",
              "rationale": RATIONALE}  # fmt: skip
    response = logged_in(alice).post(f"/review/tasks/{task_id}/decide/", answer)
    page = response.content.decode()
    assert response.status_code == 409
    assert "Your lease expired or was lost: your answer was not saved" in page
    assert RATIONALE in page and "model_error" in page
    assert 'id="next"' in page and 'action="/review/next/"' in page
    assert not Review.objects.exists()


def test_it_shows_back_the_note_of_an_escalation_on_a_lost_lease(tiny_model, service, erin, alice):
    routed(tiny_model, service, erin)
    task_id = api(alice).post(CLAIM).json()["id"]
    expire(task_id)
    response = logged_in(alice).post(f"/review/tasks/{task_id}/escalate/", {"note": "Fraud?"})
    assert response.status_code == 409 and "Fraud?" in response.content.decode()
    assert not ReviewTask.objects.filter(kind="adjudication").exists()


def test_the_next_button_of_the_not_saved_page_claims_the_next_task(
    tiny_model, service, erin, alice, bob
):
    routed(tiny_model, service, erin, n=2)
    task_id = api(alice).post(CLAIM).json()["id"]
    expire(task_id)
    api(bob).post(CLAIM)
    client = logged_in(alice)
    client.post(f"/review/tasks/{task_id}/decide/", {"verdict": "agree"})
    response = client.post("/review/next/")
    other = ReviewTask.objects.get(assignee=alice)
    assert response["Location"] == f"/review/tasks/{other.pk}/" and other.pk != task_id


def test_renewing_a_lost_lease_from_the_page_script_gets_a_json_409(
    tiny_model, service, erin, alice
):
    routed(tiny_model, service, erin)
    task_id = api(alice).post(CLAIM).json()["id"]
    expire(task_id)
    response = logged_in(alice).post(
        f"/review/tasks/{task_id}/renew/", HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "lease_lost" and "expired" in error["message"]
    assert error["fields"] == {}


def test_renewing_a_live_lease_from_the_page_script_returns_the_new_expiry(
    tiny_model, service, erin, alice
):
    routed(tiny_model, service, erin)
    task_id = api(alice).post(CLAIM).json()["id"]
    response = logged_in(alice).post(
        f"/review/tasks/{task_id}/renew/", HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 200 and "lease_expires_at" in response.json()


def test_the_case_page_has_a_place_for_the_lease_lost_message(tiny_model, service, erin, alice):
    routed(tiny_model, service, erin)
    task_id = api(alice).post(CLAIM).json()["id"]
    page = logged_in(alice).get(f"/review/tasks/{task_id}/").content.decode()
    assert 'id="lease-lost" role="alert" hidden' in page
