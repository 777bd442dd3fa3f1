"""audit.batched: the events recorded in a block are staged with one insert at its end, in the
order recorded; nothing is staged if the block raises; an event recorded in a nested atomic
block that rolls back alone is rolled back with it."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

import audit
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def _inserts(captured) -> int:
    return sum(1 for q in captured.captured_queries if "audit_auditevent" in q["sql"])


def test_events_in_a_batch_go_in_with_one_insert_in_order():
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        with audit.batched():
            audit.record(action="test.one", actor="system")
            audit.record_many([{"action": "test.two", "actor": "system"}, {"action": "test.three"}])
            assert not AuditEvent.objects.filter(action__startswith="test.").exists()
            audit.record(action="test.four", actor="system")
        # The SELECT above is one statement on the table; the insert is the other.
        assert _inserts(captured) == 2
    actions = list(
        AuditEvent.objects.filter(action__startswith="test.")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["test.one", "test.two", "test.three", "test.four"]


def test_a_batch_that_raises_stages_nothing():
    with pytest.raises(ZeroDivisionError), transaction.atomic(), audit.batched():
        audit.record(action="test.lost", actor="system")
        1 / 0  # noqa: B018
    with transaction.atomic():
        audit.record(action="test.after", actor="system")  # no batch left behind
    assert list(AuditEvent.objects.filter(action__startswith="test.").values_list(
        "action", flat=True
    )) == ["test.after"]  # fmt: skip


def test_an_event_in_a_nested_block_that_rolls_back_is_not_staged():
    with transaction.atomic(), audit.batched():
        audit.record(action="test.kept", actor="system")
        try:
            with transaction.atomic():
                audit.record(action="test.undone", actor="system")
                raise RuntimeError("the nested change fails")
        except RuntimeError:
            pass
        audit.record(action="test.kept-too", actor="system")
    actions = set(AuditEvent.objects.filter(action__startswith="test.").values_list(
        "action", flat=True
    ))  # fmt: skip
    assert actions == {"test.kept", "test.kept-too"}


@pytest.mark.django_db(transaction=True)
def test_a_batch_needs_a_transaction():
    with pytest.raises(RuntimeError, match="inside the transaction"), audit.batched():
        pass
