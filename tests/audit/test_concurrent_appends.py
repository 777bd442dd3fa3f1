from __future__ import annotations

import pytest
from django.db import close_old_connections, transaction

import audit
from audit.models import AuditEvent
from audit.verification import verify_log
from tests.threads import at_once

THREADS = 12
PER_THREAD = 40


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_never_forks_or_gaps_when_many_threads_append_at_once():
    def append(n: int) -> None:
        try:
            for i in range(PER_THREAD):
                with transaction.atomic():
                    audit.record(action="test.concurrent", actor=f"user:t{n}", payload={"i": i})
        finally:
            close_old_connections()

    _, errors = at_once(append, [(n,) for n in range(THREADS)])
    assert errors == []
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, THREADS * PER_THREAD + 1))  # no gap
    prevs = list(AuditEvent.objects.values_list("prev_hash", flat=True))
    assert len(set(prevs)) == len(prevs)  # no two events claim the same parent: no fork
    report = verify_log()
    assert report.ok and report.count == THREADS * PER_THREAD
