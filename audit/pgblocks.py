"""Reading the sealed log from PostgreSQL for the verifier, and the worker processes that read
and hash parts of it in parallel (audit.verification).

PostgreSQL sends the events' plain columns, times as UTC text ('2026-11-01 12:00:00.5' in the
ISO DateStyle); the canonical text is built here, in Python (what audit.canonical.event_text
and event_text_v2 build, inlined: a test holds them byte-equal, Unicode, control characters
and quotes included). Building it in SQL (to_json, to_char) cost the database ~9 µs an event,
more than reading and hashing it here.

No Django: a worker process imports this module, psycopg, audit.canonical and audit.merkle
only. A worker reads ranges of aligned blocks through its own connection, in the snapshot
the verifier exported (SET TRANSACTION SNAPSHOT), so every part sees the same log; for each
block it returns its leaves and root, its first link and time and last hash and time, and
whether everything inside it checked out. The verifier walks those summaries in order and
reads any block that did not check out itself, to name the first problem.
"""

from __future__ import annotations

import gc
import hashlib
import json
import signal
from datetime import datetime
from operator import le
from typing import NamedTuple

from audit import merkle
from audit.canonical import format_time

_quote = json.encoder.encode_basestring

# seq, action, actor, object_id, object_type, payload, prev_hash, hash, format, time, recorded_at
SQL = """
SELECT e.seq, e.action, e.actor, e.object_id, e.object_type, e.payload, e.prev_hash, e.hash,
       e.format, (e.time AT TIME ZONE 'UTC')::text, (e.recorded_at AT TIME ZONE 'UTC')::text
FROM audit_auditevent e
WHERE e.seq > %s AND e.seq <= %s
ORDER BY e.seq
"""
# Every sealed event, whatever its seq (one at 0, below or far above the log is read, and
# named as out of place, never skipped).
SQL_ALL = SQL.replace("WHERE e.seq > %s AND e.seq <= %s", "WHERE e.seq IS NOT NULL")
# The text output of timestamps that the time formatting below expects; and no JIT
# compilation (of a plain scan, per query: it costs more than it saves).
SETTINGS = ("SET {} DateStyle TO 'ISO, YMD'", "SET {} jit TO off")


def configure(cursor, scope: str) -> None:
    """The settings above, for the SESSION or the current transaction (LOCAL)."""
    for statement in SETTINGS:
        cursor.execute(statement.format(scope))


NO_END = 1 << 62


class Row(NamedTuple):
    seq: int
    data: bytes  # 0x00 ‖ the canonical text as UTF-8: the input of its Merkle leaf
    prev_hash: str
    hash: str
    format: int
    time: str
    recorded_at: str | None


class Summary(NamedTuple):
    """One block as a worker read it: `clean` when its seqs are exactly the block's, every
    hash matches its text, every link inside it holds and its times never go back."""

    start: int  # the first seq of the block
    count: int
    clean: bool
    first_prev_hash: str
    first_time: str
    last_hash: str
    last_time: str
    leaves: bytes  # the leaf hashes, 32 bytes each
    root: bytes | None  # the subtree root when the block is whole


def _iso(value: str, cache: dict) -> str:
    """A UTC timestamp as PostgreSQL writes it ('YYYY-MM-DD HH:MM:SS[.f]'), spelled as
    audit.canonical.format_time spells it, JSON-quoted; cached (a sealed batch shares one)."""
    spelled = cache.get(value)
    if spelled is None:
        if len(value) >= 19 and value[4] == "-" and value[10] == " " and value[0] != "0":
            clock, _, fraction = value[11:].partition(".")
            if len(clock) == 8 and len(fraction) <= 6 and (not fraction or fraction.isdigit()):
                spelled = value[:10] + "T" + clock + "." + fraction.ljust(6, "0") + "Z"
        if spelled is None:  # not the usual shape: let datetime parse it
            spelled = format_time(datetime.fromisoformat(value + "+00:00"))
        spelled = cache[value] = _quote(spelled)
    return spelled


def rows(records, cache: dict) -> list[Row]:
    """Rows with their canonical bytes, from records as SQL selects them."""
    out = []
    append = out.append
    for seq, action, actor, oid, otype, payload, prev_hash, h, fmt, time, recorded in records:
        head = (
            '\x00{"action":' + _quote(action)
            + ',"actor":' + _quote(actor)
            + ',"object_id":' + _quote(oid)
            + ',"object_type":' + _quote(otype)
            + ',"payload":' + payload
            + ',"prev_hash":' + _quote(prev_hash)
        )  # fmt: skip
        if fmt == 1:
            text = head + ',"seq":' + str(seq) + ',"time":' + _iso(time, cache) + "}"
            append(Row(seq, text.encode(), prev_hash, h, fmt, _iso(time, cache)[1:-1], None))
            continue
        spelled_time = _iso(time, cache)
        # A format-2 event always has one; without, its text cannot match its hash.
        spelled_recorded = "null" if recorded is None else _iso(recorded, cache)
        text = (
            head + ',"recorded_at":' + spelled_recorded + ',"seq":' + str(seq)
            + ',"time":' + spelled_time + ',"v":2}'
        )  # fmt: skip
        append(Row(seq, text.encode(), prev_hash, h, fmt, spelled_time[1:-1],
                   spelled_recorded[1:-1] if recorded is not None else ""))  # fmt: skip
    return out


def own_hashes(block: list[Row], leaves: list[bytes]) -> list[str]:
    """What each event's stored hash must be: its leaf (format 2), or SHA-256 of its text."""
    sha256 = hashlib.sha256
    return [
        leaf.hex() if row.format == 2 else sha256(memoryview(row.data)[1:]).hexdigest()
        for row, leaf in zip(block, leaves, strict=True)
    ]


def consistent(block: list[Row], own: list[str], prev_hash: str | None, prev_time: str) -> bool:
    """Hashes, links and times of a block, at once (`prev_hash` None: the first link is not
    checked here)."""
    hashes = [row.hash for row in block]
    times = [row.time for row in block]
    return (
        own == hashes
        and (prev_hash is None or block[0].prev_hash == prev_hash)
        and [row.prev_hash for row in block[1:]] == hashes[:-1]
        and all(a <= b for a, b in zip([prev_time, *times[:-1]], times, strict=True))
        and all(row.recorded_at <= row.time for row in block if row.format == 2)
    )


# --- the worker processes -----------------------------------------------------------------------

_conn = None
_failed = ""


def start_worker(conninfo: str, snapshot: str) -> None:
    """Pool initializer: a connection in the verifier's snapshot. It must not raise (the pool
    would start another worker, forever): a failure is raised by the first task instead."""
    global _failed
    # The worker is forked: a collection would walk (and so copy) all of the parent's objects,
    # and it makes no garbage worth collecting in its short life.
    gc.disable()
    # A handler the parent set (a task worker's) must not keep Pool.terminate from ending it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        _connect(conninfo, snapshot)
    except Exception as exc:
        _failed = f"{type(exc).__name__}: {exc}"


def _connect(conninfo: str, snapshot: str) -> None:
    import psycopg

    global _conn
    _conn = psycopg.connect(conninfo, autocommit=True)
    configure(_conn, "SESSION")
    _conn.autocommit = False
    _conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    _conn.read_only = True
    _conn.execute("SET TRANSACTION SNAPSHOT %s" % _literal(snapshot))  # noqa: UP031


def _literal(snapshot: str) -> str:
    if not snapshot.replace("-", "").isalnum():
        raise ValueError(f"not a snapshot id: {snapshot!r}")
    return f"'{snapshot}'"


def summarize(task: tuple[int, int, int]) -> list[Summary]:
    """The blocks of events lo+1..hi (lo, hi multiples of `block` but for the log's end)."""
    lo, hi, block = task
    if _conn is None:
        raise RuntimeError(f"the worker has no connection to the log ({_failed})")
    with _conn.cursor() as cursor:
        cursor.execute(SQL, (lo, hi))
        records = cursor.fetchall()
    fast = _summaries_v2(records, lo, hi, block)
    return fast if fast is not None else summaries(rows(records, {}), lo, hi, block)


def _spelled(value: str, cache: dict) -> tuple[str, str]:
    """(JSON-quoted, bare) spelling of a UTC time as PostgreSQL writes it."""
    pair = cache.get(value)
    if pair is None:
        quoted = _iso(value, {})
        pair = cache[value] = (quoted, quoted[1:-1])
    return pair


def _summaries_v2(records: list, lo: int, hi: int, block: int) -> list[Summary] | None:
    """summaries() for the usual case, column-wise and without a Row per event: every event
    lo+1..hi present, of format 2 with its recorded_at. None otherwise (summaries() then does
    it). `clean` here is never looser than summaries()'s: each check below is the same one,
    done on whole columns (a block that fails any is read again by the verifier itself)."""
    if not records or len(records) != hi - lo:
        return None
    seqs, actions, actors, oids, otypes, payloads, prevs, hashes, fmts, times, recs = zip(
        *records, strict=True
    )
    # seq is unique and ordered: first, last and count right means every seq is there.
    if seqs[0] != lo + 1 or seqs[-1] != hi or any(f != 2 for f in fmts) or None in recs:
        return None
    if None in prevs or None in hashes:
        return None
    cache: dict = {}
    timed = [_spelled(t, cache) for t in times]
    recorded = [_spelled(r, cache) for r in recs]
    q = _quote
    datas = [
        (
            '\x00{"action":' + q(a) + ',"actor":' + q(b) + ',"object_id":' + q(c)
            + ',"object_type":' + q(d) + ',"payload":' + p + ',"prev_hash":' + q(ph)
            + ',"recorded_at":' + r[0] + ',"seq":' + str(s) + ',"time":' + t[0] + ',"v":2}'
        ).encode()
        for s, a, b, c, d, p, ph, r, t in zip(
            seqs, actions, actors, oids, otypes, payloads, prevs, recorded, timed, strict=True
        )
    ]  # fmt: skip
    bare_times = [t[1] for t in timed]
    bare_recorded = [r[1] for r in recorded]
    out, sha256 = [], hashlib.sha256
    for k in range(0, hi - lo, block):
        e = min(k + block, hi - lo)
        leaves = [sha256(d).digest() for d in datas[k:e]]
        stored = hashes[k:e]
        ts = bare_times[k:e]
        clean = (
            all(len(h) == 64 for h in stored)
            and b"".join(leaves).hex() == "".join(stored)
            and prevs[k + 1 : e] == hashes[k : e - 1]
            and ts == sorted(ts)
            and all(map(le, bare_recorded[k:e], ts))
        )
        out.append(
            Summary(
                lo + 1 + k,
                e - k,
                clean,
                prevs[k],
                ts[0],
                stored[-1],
                ts[-1],
                b"".join(leaves),
                merkle.subtree_root(leaves) if clean and e - k == block else None,
            )
        )
    return out


def summaries(read: list[Row], lo: int, hi: int, block: int) -> list[Summary]:
    out, i, sha256 = [], 0, hashlib.sha256
    for start in range(lo + 1, hi + 1, block):
        end = min(start + block - 1, hi)
        j = i
        while j < len(read) and read[j].seq <= end:
            j += 1
        part, i = read[i:j], j
        if not part:
            out.append(Summary(start, 0, False, "", "", "", "", b"", None))
            continue
        leaves = [sha256(row.data).digest() for row in part]
        whole = len(part) == block
        clean = (
            part[0].seq == start
            and part[-1].seq == start + len(part) - 1
            and consistent(part, own_hashes(part, leaves), None, part[0].time)
        )
        out.append(
            Summary(
                start,
                len(part),
                clean,
                part[0].prev_hash,
                part[0].time,
                part[-1].hash,
                part[-1].time,
                b"".join(leaves),
                merkle.subtree_root(leaves) if clean and whole else None,
            )
        )
    return out
