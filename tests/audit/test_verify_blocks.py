"""The verifier reads the log in aligned blocks (complete subtrees of the Merkle tree) and
compares whole blocks with the stored tree. Small blocks here (4 events) so that a few dozen
events cross many of them: checkpoints inside a block, on its edge and in the last partial
block; a stored node or leaf changed behind the events' back; an event rewritten with every
later hash recomputed, which only the signed roots can catch."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connection, connections, transaction

import audit
from audit import merkle, pgblocks, sealer, services, verification
from audit.canonical import format_time, leaf_hash_hex
from audit.db import drop_triggers, install_triggers
from audit.models import AuditEvent, Checkpoint, MerkleNode
from audit.verification import canonical_texts_in_sql, verify_log

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    monkeypatch.setattr(verification, "BLOCK_LEVEL", 2)
    monkeypatch.setattr(verification, "BLOCK", 4)


def append(n: int) -> None:
    for i in range(n):
        with transaction.atomic():
            audit.record(action="test.happened", actor="user:alice", payload={"i": i})
    sealer.seal_all()


def tamper(fn) -> None:
    drop_triggers(connection)
    try:
        fn()
    finally:
        install_triggers(connection)


def set_node(level: int, index: int, value: bytes) -> None:
    tamper(lambda: MerkleNode.objects.filter(level=level, index=index).update(hash=value))


def rewrite(seq: int, payload: str) -> None:
    """Change event `seq` and recompute its hash and every later link and hash, as someone
    who knows the format would: the chain is whole again, only the Merkle tree remembers."""

    def change() -> None:
        AuditEvent.objects.filter(seq=seq).update(payload=payload)
        prev = None
        for event in AuditEvent.objects.filter(seq__gte=seq).order_by("seq"):
            if prev is not None:
                event.prev_hash = prev
            event.hash = leaf_hash_hex(event.canonical)
            AuditEvent.objects.filter(pk=event.pk).update(
                prev_hash=event.prev_hash, hash=event.hash
            )
            prev = event.hash

    tamper(change)


def test_checkpoints_inside_on_the_edge_of_and_after_the_blocks_verify():
    sizes = []
    for n in (5, 3, 8, 1, 20):  # sizes 5, 8, 16, 17, 37
        append(n)
        sizes.append(services.checkpoint_sign().tree_size)
    report = verify_log()
    assert report.ok, report.message
    assert (report.count, report.checkpoints) == (sizes[-1], 5)
    # The block walk gives the same roots as the tree built leaf by leaf.
    hashes = AuditEvent.objects.order_by("seq").values_list("hash", flat=True)
    leaves = [bytes.fromhex(h) for h in hashes]
    for size in sizes:
        builder = merkle.TreeBuilder()
        for leaf in leaves[:size]:
            builder.add(leaf)
        assert builder.root().hex() == Checkpoint.objects.get(tree_size=size).root


def test_a_changed_block_node_is_the_tree_that_was_altered():
    append(20)
    services.checkpoint_sign()
    set_node(2, 3, b"\x07" * 32)  # the block of events 13–16
    report = verify_log()
    assert (report.ok, report.problem, report.first_bad_seq) == (False, "tree_altered", 13)
    assert "node L2#3" in report.message and "the events are intact" in report.message


def test_a_changed_leaf_inside_a_whole_block_is_named_by_the_block_search():
    append(12)
    services.checkpoint_sign()
    bad = b"\x09" * 32
    set_node(0, 5, bad)  # event #6's leaf, and the nodes above it up to the block, recomputed
    left = bytes(MerkleNode.objects.get(level=0, index=4).hash)
    level1 = merkle.node_hash(left, bad)
    set_node(1, 2, level1)
    set_node(2, 1, merkle.node_hash(level1, bytes(MerkleNode.objects.get(level=1, index=3).hash)))
    report = verify_log()
    assert (report.problem, report.first_bad_seq) == ("tree_altered", 6)
    assert "leaf of event #6" in report.message


def test_a_changed_node_above_the_blocks_is_named():
    append(16)
    services.checkpoint_sign()
    set_node(3, 1, b"\x05" * 32)  # events 9–16: above the block level
    report = verify_log()
    assert (report.problem, report.first_bad_seq) == ("tree_altered", 9)
    assert "node L3#1" in report.message


def test_a_changed_leaf_in_the_last_partial_block():
    append(10)
    services.checkpoint_sign()
    set_node(0, 9, b"\x03" * 32)  # event #10, in the block of 9–10 that is not whole yet
    report = verify_log()
    assert (report.problem, report.first_bad_seq) == ("tree_altered", 10)


def test_a_changed_leaf_no_checkpoint_covers_yet_is_reported_without_blame():
    append(6)
    services.checkpoint_sign()
    append(3)  # events 7–9: sealed, not yet signed; 9 is in the last, partial block
    set_node(0, 8, b"\x03" * 32)
    report = verify_log()
    assert (report.problem, report.first_bad_seq) == ("altered", 9)
    assert "no signed checkpoint covers it yet" in report.message


@pytest.mark.parametrize("seq", [2, 7, 13])
def test_an_event_rewritten_with_every_later_hash_recomputed_is_named(seq):
    append(9)
    services.checkpoint_sign()
    append(7)
    services.checkpoint_sign()
    rewrite(seq, '{"i":999}')
    report = verify_log()
    assert (report.ok, report.problem, report.first_bad_seq) == (False, "altered", seq)
    assert f"event #{seq} differs from the leaf sealed for it" in report.message


AWKWARD = [
    'quote " backslash \\ slash /',
    "tab\tnewline\ncarriage\rbell\x07escape\x1b unit\x1f del\x7f",
    "\u2028line\u2029paragraph \ufeffbom \ufffd",
    "ünïcödé ß 日本語 🙂 \U0001f9ea e\u0301",
    "\x08backspace\x0cformfeed",
    "",
]


@pytest.mark.postgres
def test_postgres_writes_the_same_canonical_texts_as_python():
    for i, text in enumerate(AWKWARD):
        with transaction.atomic():
            audit.record(
                action=f"test.{i}",
                actor=f"user:{text}",
                object_type=text[:40],
                object_id=text[:64],
                payload={"text": text, "n": [1, 2.5, -0.0, 1e300, True, None], text: {}},
            )
    sealer.seal_all()
    in_sql = canonical_texts_in_sql()
    in_python = [(e.seq, e.canonical) for e in AuditEvent.objects.order_by("seq")]
    assert len(in_sql) == len(AWKWARD)
    assert in_sql == in_python
    assert verify_log().ok


@pytest.mark.postgres
def test_postgres_times_and_format_one_events_give_the_same_canonical_texts_as_python():
    """Times PostgreSQL writes short (no fraction at microsecond 0, trailing zeros dropped)
    are spelled as format_time spells them, and format-1 texts match too."""
    append(4)
    moments = [
        datetime(2026, 1, 2, 3, 4, 5, 0, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, 500000, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 120, tzinfo=UTC),
        datetime(2026, 6, 30, 22, 0, 0, 123456, tzinfo=timezone(timedelta(hours=5))),
    ]

    def change() -> None:
        for seq, moment in enumerate(moments, start=1):
            AuditEvent.objects.filter(seq=seq).update(time=moment, recorded_at=moments[-seq])
        AuditEvent.objects.filter(seq=4).update(format=1, recorded_at=None)

    tamper(change)
    in_sql = canonical_texts_in_sql()
    in_python = [(e.seq, e.canonical) for e in AuditEvent.objects.order_by("seq")]
    assert in_sql == in_python
    assert '"time":"2026-01-02T03:04:05.000000Z"' in in_sql[0][1]
    assert '"time":"2026-01-02T03:04:05.500000Z"' in in_sql[1][1]
    assert in_sql[3][1].endswith('"time":"2026-06-30T17:00:00.123456Z"}')


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 1, 2, 3, 4, 5, 0),
        datetime(2026, 1, 2, 3, 4, 5, 500000),
        datetime(2026, 1, 2, 3, 4, 5, 10),
        datetime(2026, 12, 31, 23, 59, 59, 999999),
        datetime(1000, 1, 1),
        datetime(999, 1, 1, 0, 0, 0, 7),
    ],
)
def test_times_as_postgresql_writes_them_are_spelled_as_format_time_spells_them(moment):
    written = f"{moment.year:04d}-{moment:%m-%d %H:%M:%S}"  # PostgreSQL's ISO DateStyle
    if moment.microsecond:
        written += f".{moment.microsecond:06d}".rstrip("0")
    spelled = pgblocks._iso(written, {})
    assert spelled == json.dumps(format_time(moment.replace(tzinfo=UTC)))


# --- worker processes (PostgreSQL) ---------------------------------------------------------------


@pytest.fixture
def parallel(monkeypatch):
    """Two worker processes, 2 blocks (8 events) each at a time, from 8 events on; returns the
    summaries the workers gave, as the verifier took them."""
    monkeypatch.setattr(verification, "WORKERS", 2)
    monkeypatch.setattr(verification, "PARALLEL_MIN", 8)
    monkeypatch.setattr(verification, "CHUNK_BLOCKS", 2)
    given = []
    original = verification._summaries

    def summaries(snapshot, size):
        for summary in original(snapshot, size):
            given.append(summary)
            yield summary

    monkeypatch.setattr(verification, "_summaries", summaries)
    return given


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_worker_processes_read_the_log_and_give_the_same_roots(parallel):
    append(9)
    services.checkpoint_sign()
    append(31)
    services.checkpoint_sign()  # 40 events: 10 blocks, 5 parts
    report = verify_log()
    assert report.ok, report.message
    assert (report.count, report.checkpoints) == (40, 2)
    assert [s.start for s in parallel] == list(range(1, 41, 4))
    assert all(s.clean for s in parallel)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("change", "kind", "message"),
    [
        ("payload", "altered", "event #30 was altered: its stored hash does not match"),
        ("rewrite", "altered", "event #30 differs from the leaf sealed for it"),
        ("delete", "missing", "event #30 is missing: the log jumps from #29 to #31"),
    ],
)
def test_a_change_in_a_later_part_is_named_with_its_seq(parallel, change, kind, message):
    append(40)
    services.checkpoint_sign()
    if change == "payload":
        tamper(lambda: AuditEvent.objects.filter(seq=30).update(payload='{"i":999}'))
    elif change == "rewrite":
        rewrite(30, '{"i":999}')
    else:
        tamper(lambda: AuditEvent.objects.filter(seq=30).delete())
    report = verify_log()
    assert (report.ok, report.problem, report.first_bad_seq) == (False, kind, 30)
    assert message in report.message
    if change == "delete":
        # A log not numbered 1..n is not split into ranges: this process reads it whole.
        assert parallel == []
    else:
        # The workers were used: up to that block, which this process then read itself; or
        # through the end when the chain was made whole again (the stored tree tells).
        assert parallel and parallel[-1].start == (37 if change == "rewrite" else 29)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("seq", [0, -5, 2**62 + 1, 2**63 - 1])
def test_an_event_put_outside_the_log_s_numbering_is_found(parallel, seq):
    """A sealed row at seq 0, below it or far above the log is read and named, never skipped
    (on PostgreSQL, the log is then not split among worker processes)."""
    append(40)
    services.checkpoint_sign()
    first = AuditEvent.objects.get(seq=1)

    def stray() -> None:
        first.pk, first.seq, first.hash = None, seq, "f" * 64
        first.save()

    tamper(stray)
    report = verify_log()
    assert not report.ok
    assert report.problem in {"missing", "out_of_order", "altered"}
    assert parallel == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_workers_see_the_log_as_of_the_verifiers_snapshot(parallel, monkeypatch):
    """What happens once the verifier has its snapshot, an event changed (behind the
    triggers' back) and events sealed, is seen by none of its processes."""
    append(40)
    services.checkpoint_sign()
    original = verification._summaries

    def meanwhile() -> None:
        try:
            # Past the triggers without DDL (DROP TRIGGER would wait for the verifier).
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL session_replication_role = replica")
                AuditEvent.objects.filter(seq=30).update(payload='{"i":999}')
            append(6)
        finally:
            connections.close_all()

    def summaries(snapshot, size):
        monkeypatch.setattr(verification, "_summaries", original)  # once
        thread = threading.Thread(target=meanwhile)
        thread.start()
        thread.join()
        assert AuditEvent.objects.filter(seq__isnull=False).count() == 40  # our snapshot
        yield from original(snapshot, size)

    monkeypatch.setattr(verification, "_summaries", summaries)
    report = verify_log()
    assert report.ok, report.message
    assert report.count == 40
    assert len(parallel) == 10 and all(s.clean for s in parallel)
    assert verify_log().first_bad_seq == 30  # a new snapshot sees both


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_workers_that_cannot_connect_leave_the_whole_pass_to_this_process(parallel, monkeypatch):
    append(20)
    services.checkpoint_sign()
    monkeypatch.setattr(verification, "_conninfo", lambda: "host=127.0.0.1 port=1 dbname=none")
    tamper(lambda: AuditEvent.objects.filter(seq=18).update(payload='{"i":999}'))
    report = verify_log()
    assert (report.problem, report.first_bad_seq) == ("altered", 18)
    assert parallel == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_from_a_thread_other_than_the_main_one_the_log_is_read_in_one_process(parallel):
    """A server's request thread or the embedded jobs' thread does not fork workers."""
    import threading

    append(40)
    services.checkpoint_sign()
    reports = []

    def run() -> None:
        try:
            reports.append(verify_log())
        finally:
            connection.close()  # the thread's own connection

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert reports[0].ok and reports[0].count == 40
    assert parallel == []
    assert verify_log().ok and parallel  # from the main thread: the workers read it
