from __future__ import annotations

import pytest

from audit.verification import verify_log
from reviews.models import Decision
from tests.fixtures import item
from tests.threads import post_at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 12
URL = "/api/v1/decisions/"


def test_concurrent_duplicates_leave_one_decision(tiny_model, service):
    responses = post_at_once(service.client, URL, [item(1)] * THREADS)
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * (THREADS - 1) + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert Decision.objects.count() == 1
    report = verify_log()
    assert report.ok


def test_concurrent_conflicting_bodies_store_one_and_refuse_the_rest(tiny_model, service):
    bodies = [item(1, features={"income": 100.0 + n}) for n in range(THREADS)]
    responses = post_at_once(service.client, URL, bodies)
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * (THREADS - 1)
    assert Decision.objects.count() == 1
