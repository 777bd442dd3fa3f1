from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

import audit
from audit import sealer
from audit.canonical import GENESIS_HASH, canonical_json, format_time, leaf_hash_hex
from audit.db import drop_triggers, install_triggers
from audit.models import AuditEvent, ChainVerification
from audit.verification import verify_log

pytestmark = pytest.mark.django_db


def sealed(events: list[AuditEvent]) -> list[AuditEvent]:
    """The events as the sealer left them (sealing in the test's own transaction, as the
    after-commit sealing of the embedded default would after a real commit)."""
    sealer.seal_all()
    return [AuditEvent.objects.get(pk=event.pk) for event in events]


def append(n: int, action: str = "test.happened") -> list[AuditEvent]:
    events = []
    for i in range(n):
        with transaction.atomic():
            events.append(
                audit.record(action=action, actor="user:alice", payload={"i": i, "ü": "ß"})
            )
    return sealed(events)


@pytest.mark.django_db(transaction=True)
def test_it_refuses_to_record_outside_a_transaction():
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit.record(action="test.happened")


def test_it_chains_each_event_to_the_one_before():
    first, second, third = append(3)
    assert (first.seq, second.seq, third.seq) == (1, 2, 3)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert third.prev_hash == second.hash


def test_its_hash_is_the_merkle_leaf_of_the_canonical_event_including_prev_hash():
    (event,) = append(1)
    as_dict = {
        "seq": event.seq,
        "time": format_time(event.time),
        "recorded_at": format_time(event.recorded_at),
        "actor": event.actor,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "payload": json.loads(event.payload),
        "prev_hash": event.prev_hash,
        "v": 2,
    }
    assert event.canonical == canonical_json(as_dict)
    assert event.hash == leaf_hash_hex(canonical_json(as_dict))
    assert event.recorded_at <= event.time
    # Sorted keys, no whitespace, UTF-8 (not \u escapes).
    assert event.payload == '{"i":0,"ü":"ß"}'


def test_it_rolls_back_with_the_change_it_records():
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        audit.record(action="test.happened")
        1 / 0  # noqa: B018
    assert not AuditEvent.objects.exists()
    (event,) = append(1)
    assert event.seq == 1


def test_verify_reports_ok_with_the_count():
    append(5)
    report = verify_log()
    assert report.ok and report.count == 5 and report.last_seq == 5


def test_the_command_says_ok_and_keeps_the_result(capsys):
    append(3)
    call_command("audit_verify")
    assert "OK: 3 events, chain intact" in capsys.readouterr().out
    verification = ChainVerification.objects.get()
    assert verification.ok is True and verification.events_checked == 3


def test_the_database_refuses_update():
    append(2)
    with pytest.raises(DatabaseError, match="append-only"), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET actor = 'user:mallory' WHERE seq = 1")


def test_the_database_refuses_delete():
    append(2)
    with pytest.raises(DatabaseError, match="append-only"), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq = 2")


@pytest.mark.postgres
def test_the_database_refuses_truncate():
    append(2)
    with pytest.raises(DatabaseError, match="append-only"), connection.cursor() as cursor:
        cursor.execute("TRUNCATE audit_auditevent")


def _tamper(sql: str, params: list) -> None:
    drop_triggers(connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    install_triggers(connection)


def test_verify_names_an_altered_event():
    append(5)
    _tamper("UPDATE audit_auditevent SET payload = %s WHERE seq = 3", ['{"i":99}'])
    report = verify_log()
    assert not report.ok
    assert (report.first_bad_seq, report.problem) == (3, "altered")
    assert report.count == 2


def test_the_command_fails_and_names_the_altered_event():
    append(4)
    _tamper("UPDATE audit_auditevent SET actor = %s WHERE seq = 2", ["user:mallory"])
    with pytest.raises(CommandError, match=r"FAILED at event #2 \(altered\)"):
        call_command("audit_verify")


def test_verify_names_a_deleted_event():
    append(5)
    _tamper("DELETE FROM audit_auditevent WHERE seq = %s", [3])
    report = verify_log()
    assert (report.ok, report.first_bad_seq, report.problem) == (False, 3, "missing")
    assert "jumps from #2 to #4" in report.message


def _insert(seq: int, prev_hash: str, time) -> AuditEvent:
    """Append a self-consistent event by hand, as someone rewriting the log would (with the
    triggers out of the way)."""
    event = AuditEvent(
        seq=seq, time=time, recorded_at=time, actor="user:mallory", action="test.forged",
        object_type="", object_id="", payload="{}", prev_hash=prev_hash, hash="",
    )  # fmt: skip
    event.hash = leaf_hash_hex(event.canonical)
    drop_triggers(connection)
    event.save(force_insert=True)
    install_triggers(connection)
    return event


def test_verify_names_an_event_linked_out_of_order():
    e1, e2 = append(2)
    _insert(3, e1.hash, e2.time)  # a valid event, but it follows #1, not #2
    report = verify_log()
    assert (report.first_bad_seq, report.problem) == (3, "out_of_order")
    assert "follows event #1" in report.message


def test_verify_names_a_broken_link():
    _, e2 = append(2)
    _insert(3, "f" * 64, e2.time)
    report = verify_log()
    assert (report.first_bad_seq, report.problem) == (3, "broken_link")


def test_verify_flags_time_running_backwards():
    _, e2 = append(2)
    _insert(3, e2.hash, e2.time - timedelta(hours=1))
    report = verify_log()
    assert (report.first_bad_seq, report.problem) == (3, "out_of_order")


def test_time_never_goes_backwards_even_if_the_clock_does(monkeypatch):
    (first,) = append(1)
    from django.utils import timezone

    monkeypatch.setattr(timezone, "now", lambda: first.time - timedelta(minutes=5))
    (second,) = append(1)
    assert second.time == first.time
    assert verify_log().ok


def test_record_many_appends_in_order_with_one_chain():
    with transaction.atomic():
        events = audit.record_many(
            [{"action": "test.batch", "payload": {"n": n}} for n in range(10)]
        )
    assert [e.seq for e in events] == [None] * 10  # staged: no lock, no chain head read
    assert [e.seq for e in sealed(events)] == list(range(1, 11))
    assert verify_log().ok
