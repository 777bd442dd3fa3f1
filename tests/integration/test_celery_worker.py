"""A real `celery worker` process, over Redis, against the PostgreSQL test database."""

from __future__ import annotations

import pytest

from audit import services
from audit.models import ChainVerification
from tests.audit.test_chain import append
from tests.integration.workers import wait_for, workers

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker():
    with workers() as start:
        process = start()
        yield process.stop


def test_a_real_worker_runs_the_chain_verification_over_redis(worker):
    """The task goes through Redis to the worker process, which writes the result."""
    append(25)
    verification = services.verification_request(actor="user:dave")

    def done() -> bool:
        verification.refresh_from_db()
        return verification.status == ChainVerification.Status.DONE

    assert wait_for(done), "the worker did not finish the verification in time"
    assert verification.ok is True
    # 25 events + the "verification requested" event itself.
    assert verification.events_checked == 26
    log = worker()
    assert "audit.tasks.verify_chain[" in log and "succeeded" in log, log[-2000:]
