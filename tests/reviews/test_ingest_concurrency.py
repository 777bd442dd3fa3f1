from __future__ import annotations

import threading

import pytest
from django.db import connection

from audit.verification import verify_log
from reviews.models import Decision
from tests.fixtures import item

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 12


def race(service, bodies: list[dict]) -> list:
    """Send each body from its own thread, all released at once."""
    start = threading.Barrier(len(bodies))
    responses: list = [None] * len(bodies)

    def send(i: int) -> None:
        try:
            start.wait()
            responses[i] = service.client().post("/api/v1/decisions/", bodies[i], format="json")
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


def test_concurrent_duplicates_leave_one_decision(tiny_model, service):
    responses = race(service, [item(1)] * THREADS)
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * (THREADS - 1) + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert Decision.objects.count() == 1
    report = verify_log()
    assert report.ok


def test_concurrent_conflicting_bodies_store_one_and_refuse_the_rest(tiny_model, service):
    bodies = [item(1, features={"income": 100.0 + n}) for n in range(THREADS)]
    responses = race(service, bodies)
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * (THREADS - 1)
    assert Decision.objects.count() == 1
