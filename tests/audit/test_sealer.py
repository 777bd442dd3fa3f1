"""Sequencing apart from committing: events are staged in their change's transaction and
sealed later, in order, by one sealer; only the sealer may seal, once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils import timezone

import audit
from audit import sealer
from audit.canonical import GENESIS_HASH, event_hash, event_text, format_time
from audit.db import drop_triggers, install_triggers
from audit.models import Alert, AuditEvent, MerkleNode, SealPermit
from audit.services import checkpoint_sign, seal_lag_check
from audit.tree import sealed_size
from audit.verification import verify_log
from tests.threads import at_once

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def stage(n: int, action: str = "test.staged") -> list[AuditEvent]:
    events = []
    for i in range(n):
        with transaction.atomic():
            events.append(audit.record(action=action, actor="user:alice", payload={"i": i}))
    return events


def test_recording_stages_an_event_and_the_commit_seals_it(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as after_commit:
        (event,) = stage(1)
    staged = AuditEvent.objects.get(pk=event.pk)
    assert (staged.seq, staged.time, staged.prev_hash, staged.hash) == (None, None, None, None)
    assert staged.recorded_at is not None and staged.format == 2
    for callback in after_commit:
        callback()
    sealed = AuditEvent.objects.get(pk=event.pk)
    assert (sealed.seq, sealed.prev_hash) == (1, GENESIS_HASH)
    assert sealed.recorded_at <= sealed.time and sealed_size() == 1
    assert verify_log().ok


def test_the_sealer_keeps_the_order_events_were_staged_in_and_time_never_goes_back(monkeypatch):
    events = stage(5)
    first = AuditEvent.objects.get(pk=events[0].pk)
    assert first.seq is None
    assert sealer.seal(limit=2) == 2
    assert sealer.seal_all() == 3
    sealed = list(AuditEvent.objects.order_by("seq").values_list("id", "seq", "time"))
    assert [pk for pk, _, _ in sealed] == [e.pk for e in events]
    assert [seq for _, seq, _ in sealed] == [1, 2, 3, 4, 5]
    late = sealed[-1][2]
    monkeypatch.setattr(timezone, "now", lambda: late - timedelta(minutes=5))  # clock steps back
    stage(1)
    sealer.seal_all()
    assert AuditEvent.objects.get(seq=6).time == late
    assert verify_log().ok


def test_a_rolled_back_change_leaves_no_event():
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        audit.record(action="test.happened")
        1 / 0  # noqa: B018
    assert sealer.seal_all() == 0 and not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET seq = 1, hash = 'x', prev_hash = 'y'",  # no permit
        "DELETE FROM audit_auditevent",
        "INSERT INTO audit_auditevent (seq, time, recorded_at, format, actor, action, "
        "object_type, object_id, payload, prev_hash, hash) VALUES (9, '2026-01-01', "
        "'2026-01-01', 2, 'a', 'b', '', '', '{}', 'p', 'h')",
    ],
)
def test_only_the_sealer_seals_an_event(sql):
    stage(1)
    with pytest.raises(DatabaseError, match="append-only"), connection.cursor() as cursor:
        cursor.execute(sql)


def test_even_with_the_permit_what_was_recorded_cannot_change_and_nothing_is_sealed_twice():
    stage(1)
    SealPermit.objects.create(created_at=timezone.now())
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE audit_auditevent SET seq = 1, hash = 'x', prev_hash = 'y', actor = 'mallory'"
        )
    SealPermit.objects.all().delete()
    sealer.seal_all()
    SealPermit.objects.create(created_at=timezone.now())
    with pytest.raises(DatabaseError, match="append-only"), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET seq = 7")


def test_the_stored_tree_is_append_only_too():
    stage(3)
    sealer.seal_all()
    for sql in ("UPDATE audit_merklenode SET hash = hash", "DELETE FROM audit_treestate"):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)


def test_a_log_of_format_one_events_is_caught_up_and_continued_in_format_two(tmp_path, signer):
    """Events appended before sealing moved out of the commit path (format 1, no stored tree
    yet) are taken into the tree first; the chain goes on across the two formats."""
    prev, when = GENESIS_HASH, timezone.now() - timedelta(days=1)
    drop_triggers(connection)
    for seq in (1, 2, 3):
        text = event_text(
            seq=seq, time=format_time(when), actor="system", action="old.event",
            object_type="", object_id="", payload="{}", prev_hash=prev,
        )  # fmt: skip
        AuditEvent.objects.create(
            id=seq, seq=seq, time=when, format=1, actor="system", action="old.event",
            payload="{}", prev_hash=prev, hash=event_hash(text),
        )  # fmt: skip
        prev = event_hash(text)
    install_triggers(connection)
    stage(2)
    assert sealer.seal_all() == 2
    assert list(AuditEvent.objects.order_by("seq").values_list("format", flat=True)) == [
        1, 1, 1, 2, 2
    ]  # fmt: skip
    assert AuditEvent.objects.get(seq=4).prev_hash == prev
    assert MerkleNode.objects.filter(level=0).count() == 5
    checkpoint = checkpoint_sign()
    assert checkpoint.tree_size == 5
    report = verify_log()
    assert report.ok and report.count == 5 and report.checkpoints == 1


def test_waiting_too_long_for_the_sealer_raises_an_alert(settings):
    settings.AUDIT_SEAL_MAX_LAG_SECONDS = 60
    stage(2)
    assert seal_lag_check() is None
    later = timezone.now() + timedelta(seconds=61)
    alert = seal_lag_check(now=later)
    assert alert.kind == "seal_lag" and "2 audit events are waiting" in alert.message
    assert seal_lag_check(now=later).pk == alert.pk  # one open alert


def test_audit_verify_reports_events_still_waiting(capsys):
    stage(2)
    sealer.seal_all()
    stage(1)
    call_command("audit_verify")
    out = capsys.readouterr().out
    # The one staged before, and the verification's own result event (staged in its turn).
    assert "OK: 2 events" in out and "2 events recorded but not sealed yet" in out


def test_a_decisions_history_includes_events_not_sealed_yet(tiny_model, service):
    from reviews.selectors import AUDITOR, decision_history
    from reviews.services import decisions_ingest
    from tests.fixtures import item

    decision = decisions_ingest(items=[item(1)], actor=service.user)[0].decision
    (event,) = decision_history(decision, AUDITOR)
    assert (event["action"], event["seq"]) == ("decision.ingested", None)
    assert event["time"] is not None  # when the change was made


# --- the sealer process, on PostgreSQL -----------------------------------------------------

WRITERS, PER_WRITER = 8, 50


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_many_writers_and_one_sealer_leave_no_gap_no_duplicate_and_a_tree_that_verifies(
    settings,
):
    settings.AUDIT_SEAL_INLINE = False
    done = {"writers": False}

    def write(n: int) -> None:
        try:
            for i in range(PER_WRITER):
                with transaction.atomic():
                    audit.record(action="test.concurrent", actor=f"user:w{n}", payload={"i": i})
                    if i % 7 == 3:  # some changes roll back: their events never reach the log
                        transaction.set_rollback(True)
        finally:
            close_old_connections()

    def seal() -> None:
        try:
            sealer.run(interval=0.01, stop=lambda: done["writers"] and not sealer.staged_count())
        finally:
            close_old_connections()

    sealing = threading.Thread(target=seal)
    sealing.start()
    _, errors = at_once(write, [(n,) for n in range(WRITERS)])
    done["writers"] = True
    sealing.join(timeout=120)
    assert errors == [] and not sealing.is_alive()
    kept = WRITERS * (PER_WRITER - len([i for i in range(PER_WRITER) if i % 7 == 3]))
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, kept + 1))  # every committed event, once, no gap
    assert AuditEvent.objects.count() == kept  # nothing of the rolled-back changes
    assert sealed_size() == kept
    report = verify_log()
    assert report.ok and report.count == kept


def _sealer_process(database: str, log: Path) -> subprocess.Popen:
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{database}",
        "AUDIT_SEALER_STANDBY_SECONDS": "0.2",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "audit_sealer", "--interval", "0.01"],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def _wait(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_killed_sealer_loses_nothing_and_a_standby_takes_over(settings, tmp_path):
    settings.AUDIT_SEAL_INLINE = False
    with transaction.atomic():  # a big batch, so that the kill lands while sealing
        audit.record_many([{"action": "test.bulk", "payload": {"n": n}} for n in range(30_000)])
    database = connection.settings_dict["NAME"]
    logs = tmp_path / "first.log", tmp_path / "second.log"
    first = _sealer_process(database, logs[0])
    second = None
    try:
        # The first one has the lock once it has sealed something; the second stands by.
        assert _wait(lambda: sealer.staged_count() < 30_000 or first.poll() is not None)
        second = _sealer_process(database, logs[1])
        assert _wait(lambda: "standing by" in logs[1].read_text()), "no standby"
        first.send_signal(signal.SIGKILL)  # most likely in the middle of a batch
        first.wait(timeout=20)
        assert _wait(lambda: sealer.staged_count() == 0, timeout=120), "the standby did not seal"
    finally:
        for process in filter(None, (first, second)):
            if process.poll() is None:
                process.terminate()
            process.wait(timeout=20)
        for log in logs:
            print(log.read_text()[-2000:] if log.exists() else "")
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 30_001))
    report = verify_log()
    assert report.ok and report.count == 30_000
    assert not Alert.objects.exists()
