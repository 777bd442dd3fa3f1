"""The queue page and the list of one's claims: right counts, few queries."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from reviews.models import ReviewTask
from tests.fixtures import api
from tests.reviews.test_queue import CLAIM, routed

pytestmark = pytest.mark.django_db


def queue_page(user) -> str:
    client = Client()
    client.force_login(user)
    return client.get("/review/").content.decode()


def test_it_offers_tasks_whose_lease_expired_before_the_beat_ran(
    tiny_model, service, erin, alice, bob
):
    routed(tiny_model, service, erin)
    task_id = api(bob).post(CLAIM).json()["id"]
    assert "disabled" in re.search(r'<button[^>]*id="start"[^>]*>', queue_page(alice)).group(0)
    ReviewTask.objects.filter(pk=task_id).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    page = queue_page(alice)
    assert "disabled" not in re.search(r'<button[^>]*id="start"[^>]*>', page).group(0)
    assert "(1 waiting for you)" in page
    assert ReviewTask.objects.get(pk=task_id).state == "open"


def test_overdue_counts_claimed_tasks_past_their_due_time(tiny_model, service, erin, alice, bob):
    routed(tiny_model, service, erin, n=3)
    held = api(bob).post(CLAIM).json()["id"]
    late = list(ReviewTask.objects.order_by("id").values_list("pk", flat=True)[:2])
    assert held in late
    ReviewTask.objects.filter(pk__in=late).update(due_at=timezone.now() - timedelta(hours=1))
    page = queue_page(alice)
    assert "Overdue, waiting or claimed (2)" in page
    assert "claimed by bob" in page and "waiting" in page
    row = re.search(r"<tr><td>tiny</td><td>initial</td>(.*?)</tr>", page).group(1)
    assert re.findall(r'<td class="num[^"]*">(\d+)</td>', row) == ["2", "2"]  # open, overdue


def test_the_list_of_my_claims_takes_the_same_queries_for_one_or_many(
    tiny_model, service, erin, alice
):
    routed(tiny_model, service, erin, n=4)

    def queries() -> tuple[list, int]:
        with CaptureQueriesContext(connection) as captured:
            body = api(alice).get("/api/v1/review-tasks/").json()
        return body, len(captured)

    api(alice).post(CLAIM)
    claims, one = queries()
    assert len(claims) == 1
    for _ in range(3):
        api(alice).post(CLAIM)
    claims, many = queries()
    assert len(claims) == 4 and many == one
    assert all("features" in c["decision"] and "model_outcome" in c["decision"] for c in claims)
