"""An override may carry words for the person the decision is about; agreeing may not."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from audit.models import AuditEvent
from core.errors import ApplicationError
from models_registry import services as registry
from reviews import services
from reviews.models import Review
from reviews.services import decisions_ingest
from tests.fixtures import api, item

pytestmark = pytest.mark.django_db


@pytest.fixture
def task(tiny_model, service, erin, alice):
    registry.policy_update(model=tiny_model, changes={"review_all": True}, actor=erin, note="test")
    decisions_ingest(items=[item(1)], actor=service.user)
    return services.task_claim_next(reviewer=alice)


OVERRIDE = {
    "verdict": "override",
    "outcome": "deny",
    "reason_code": "model_error",
    "rationale": "The debt figure is wrong.",
}


def test_an_override_keeps_the_explanation_for_the_person_and_audits_it(task, alice):
    words = "We found a debt the application did not list."
    review = services.review_submit(
        task_id=task.pk, reviewer=alice, explanation_for_person=f"  {words} ", **OVERRIDE
    )
    assert review.explanation_for_person == words
    event = AuditEvent.objects.get(action="review.submitted")
    assert json.loads(event.payload)["explanation_for_person"] == words


def test_it_is_optional(task, alice):
    review = services.review_submit(task_id=task.pk, reviewer=alice, **OVERRIDE)
    assert review.explanation_for_person == ""


def test_agreeing_takes_none(task, alice):
    with pytest.raises(ApplicationError) as refused:
        services.review_submit(
            task_id=task.pk, reviewer=alice, verdict="agree", explanation_for_person="Fine."
        )
    assert set(refused.value.fields) == {"explanation_for_person"}
    assert not Review.objects.exists()


def test_it_is_at_most_2000_characters(task, alice):
    with pytest.raises(ApplicationError) as refused:
        services.review_submit(
            task_id=task.pk, reviewer=alice, explanation_for_person="x" * 2001, **OVERRIDE
        )
    assert set(refused.value.fields) == {"explanation_for_person"}


def test_the_api_and_the_case_page_take_it(task, alice):
    body = {**OVERRIDE, "explanation_for_person": "A debt was missing."}
    response = api(alice).post(f"/api/v1/review-tasks/{task.pk}/decision/", body, format="json")
    assert response.status_code == 201
    assert Review.objects.get().explanation_for_person == "A debt was missing."


def test_the_case_page_offers_it_with_the_override(task, alice):
    client = Client()
    client.force_login(alice)
    page = client.get(f"/review/tasks/{task.pk}/").content.decode()
    assert 'name="explanation_for_person"' in page
    client.post(
        f"/review/tasks/{task.pk}/decide/",
        {**OVERRIDE, "explanation_for_person": "Said on the page."},
    )
    assert Review.objects.get().explanation_for_person == "Said on the page."
