"""The audit trail at a million events: full verification, Merkle proofs, checkpoints, exports.

Setup (timed and printed, not a figure): the demo; decisions generated in SQL from the demo's
real decisions (copied round-robin, `--decisions` in all, with their protected attributes, and
a done task and a review for every routed copy); then audit events appended through the real
append path, `audit.log.record_many`, 10,000 per transaction, until the log holds `--events`
events, with a checkpoint signed (`audit.services.checkpoint_sign`) every 100,000 events.

Measured, in the same run on the same machine, each beside its anchor:
1. `verify_log()` (what `manage.py audit_verify` runs) over the whole log, events/s. Anchor:
   hashlib.sha256 over the events' canonical bytes, already in memory (goal ≥ 0.2 of it, using
   both cores, and 1M events in ≤ 10 s).
2. Inclusion and consistency proofs on the full log, each with a fresh StoredTree, directly and
   through GET /api/v1/audit/proofs/…; every proof is checked with audit.merkle against roots
   computed independently from the in-memory leaves (failures must be 0).
3. `checkpoint_sign()` after a fixed 1,000 new events at log sizes 10k, 100k, 1M, with the
   queries it runs. Anchor: merkle.root over all n in-memory leaf hashes (rehashing from scratch).
4. Exports of every decision to CSV and Parquet (export_request → export_run, in-process as
   without Redis) in a fresh child process: rows/s and the child's peak RSS, with the
   database's writer (oversight.export_sql, what PostgreSQL runs) and, for comparison in the
   same run, the Python writer (oversight.exports, what SQLite runs and what ran on PostgreSQL
   before; skip it with --no-python-writer). Anchors: the fair one of issue 15, COPY of the
   export's own query with its reviews and protected attributes aggregated once (GROUP BY
   joined in, as JSON) TO STDOUT (FORMAT csv), read to a file (goal ≥ 0.7 of it, peak RSS
   < 300 MB); and today's, COPY of the export's query alone.

    python -m bench.audit [--events 1000000] [--decisions 1000000] [--proofs 200]
    python -m bench.audit --only exports [--decisions 1000000]   # section 4 alone, no events
    python -m bench.audit --only verify [--events 1000000]        # sections 1 and 3 alone
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import os
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import ROOT, machine, postgres_version, report, setup_django, summary_ms, timer

BATCH = 10_000  # events per record_many transaction
CHECKPOINT_EVERY = 100_000
INCREMENT = 1_000  # new events before each measured checkpoint
MEASURE_AT = (10_000, 100_000, 1_000_000)
GOAL_MS = 50
AUDITOR = "bench-auditor"
EPOCH = datetime(2026, 11, 1, tzinfo=UTC)

# The columns exports.iter_rows reads (its values_list).
EXPORT_FIELDS = (
    "id", "model__name", "model_version__number", "external_id", "subject_ref", "received_at",
    "features", "model_outcome", "confidence", "scored_by", "routed", "routing",
    "policy_version", "status", "final_outcome", "finalized_by", "finalized_at",
)  # fmt: skip


# --- decisions, in SQL ---------------------------------------------------------------------------


def generate_decisions(total: int) -> int:
    """Copies of the demo's decisions (round-robin) until there are `total`; the routed copies
    are settled by a review (one in seven an override). Returns how many were made."""
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.db import connection

    from reviews.models import Decision

    existing = Decision.objects.count()
    n = max(total - existing, 0)
    if not n:
        return 0
    reviewers = [User.objects.get(username=u).pk for u in ("alice", "bob", "carol")]
    columns = [f.column for f in Decision._meta.concrete_fields if f.column != "id"]
    received = "received_at - n * interval '1 second'"
    reviewed = "routed"
    varying = {
        "external_id": "'gen-' || n",
        "subject_ref": "'s-gen-' || n",
        "received_at": received,
        "status": f"CASE WHEN {reviewed} THEN 'final' ELSE status END",
        "final_outcome": f"""CASE WHEN NOT {reviewed} THEN final_outcome
            WHEN n %% 7 = 0 THEN (CASE model_outcome WHEN 'approve' THEN 'deny' ELSE 'approve' END)
            ELSE model_outcome END""",
        "finalized_by": f"CASE WHEN {reviewed} THEN 'reviewer' ELSE finalized_by END",
        "finalized_by_user_id": f"CASE WHEN {reviewed} THEN %(alice)s ELSE NULL END",
        "finalized_at": f"{received} + CASE WHEN {reviewed} THEN interval '3 hours' ELSE "
        "interval '0' END",
    }
    select = ", ".join(varying.get(c, c) for c in columns)
    params = {"n": n, "alice": reviewers[0], "reviewers": reviewers}
    params["code"] = settings.REVIEW_REASON_CODES[0]
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE bench_tpl AS "
            "SELECT row_number() OVER (ORDER BY id) - 1 AS k, id AS tid FROM reviews_decision"
        )
        cursor.execute("SELECT count(*) FROM bench_tpl")
        params["t"] = cursor.fetchone()[0]
        cursor.execute(
            f"INSERT INTO reviews_decision ({', '.join(columns)}) SELECT {select} "
            "FROM generate_series(1, %(n)s) AS n JOIN bench_tpl ON k = n %% %(t)s "
            "JOIN reviews_decision ON id = tid",
            params,
        )
        cursor.execute(
            """INSERT INTO reviews_protectedattribute (decision_id, name, value)
               SELECT g.id, p.name, p.value FROM reviews_decision g
               JOIN bench_tpl ON k = substr(g.external_id, 5)::bigint %% %(t)s
               JOIN reviews_protectedattribute p ON p.decision_id = tid
               WHERE g.external_id LIKE 'gen-%%'""",
            params,
        )
        cursor.execute(
            """INSERT INTO reviews_reviewtask (decision_id, model_id, kind, state, priority,
                   due_at, senior_only, blind, is_gold, note, assignee_id, claimed_at,
                   created_at, closed_at)
               SELECT id, model_id, 'initial', 'done', 10, received_at + interval '1 day',
                   false, false, false, '', (%(reviewers)s::int[])[1 + id %% 3],
                   received_at + interval '2 hours', received_at, finalized_at
               FROM reviews_decision WHERE external_id LIKE 'gen-%%' AND routed""",
            params,
        )
        cursor.execute(
            """INSERT INTO reviews_review (task_id, decision_id, reviewer_id, kind, verdict,
                   outcome, agrees_with_model, reason_code, rationale, seconds_spent,
                   model_hidden, is_gold, gold_correct, created_at, explanation_for_person)
               SELECT t.id, d.id, t.assignee_id, 'initial',
                   CASE WHEN d.final_outcome = d.model_outcome THEN 'agree' ELSE 'override' END,
                   d.final_outcome, d.final_outcome = d.model_outcome,
                   CASE WHEN d.final_outcome = d.model_outcome THEN '' ELSE %(code)s END,
                   CASE WHEN d.final_outcome = d.model_outcome THEN ''
                        ELSE 'Income documents contradict the application; the debt ratio '
                             'used by the model is out of date.' END,
                   20 + d.id %% 400, false, false, NULL, d.finalized_at, ''
               FROM reviews_reviewtask t JOIN reviews_decision d ON d.id = t.decision_id
               WHERE d.external_id LIKE 'gen-%%' AND t.state = 'done'""",
            params,
        )
        cursor.execute("DROP TABLE bench_tpl")
        cursor.execute(
            "ANALYZE reviews_decision; ANALYZE reviews_protectedattribute; "
            "ANALYZE reviews_reviewtask; ANALYZE reviews_review"
        )
    return n


# --- events, through record_many -----------------------------------------------------------------


class Events:
    """Entries like the product's own: mostly decision.ingested (the payload of
    reviews/services/ingest.py `_ingest_event`), then the queue's claims, reviews, settlements
    and audited reads, by the demo's real users."""

    def __init__(self, rng: random.Random, first_decision: int) -> None:
        from django.contrib.auth.models import User

        from audit.canonical import format_time
        from models_registry.models import ModelVersion
        from oversight import demo
        from reviews.models import REASONS

        self.rng, self.format_time = rng, format_time
        self.service = User.objects.get(username=f"svc-{demo.SERVICE_NAME}")
        self.reviewers = list(User.objects.filter(username__in=["alice", "bob", "carol"]))
        self.auditor = User.objects.get(username="dave")
        version = ModelVersion.objects.select_related("model").order_by("id").first()
        self.model, self.artifact = version.model.name, version.sha256
        self.reasons = REASONS
        self.decision = first_decision
        self.task = 10_000_000
        self.review = 10_000_000

    def _hex(self) -> str:
        return f"{self.rng.getrandbits(256):064x}"

    def _recent(self) -> int:
        return max(1, self.decision - self.rng.randrange(5_000))

    def make(self) -> dict:
        x = self.rng.random()
        if x < 0.62:
            return self.ingested()
        if x < 0.72:
            return self.queue("task.claimed", lease_expires_at=self._time())
        if x < 0.80:
            return self.submitted()
        if x < 0.86:
            return self.finalized()
        if x < 0.97:
            return self.viewed()
        return self.queue("task.released" if x < 0.985 else "task.renewed")

    def _time(self) -> str:
        seconds = self.rng.randrange(30 * 86400 * 10**6)
        return self.format_time(EPOCH + timedelta(microseconds=seconds))

    def ingested(self) -> dict:
        rng = self.rng
        self.decision += 1
        routed = rng.random() < 0.18
        outcome = "approve" if rng.random() < 0.8 else "deny"
        tasks = []
        if routed:
            self.task += 1
            tasks = [{"id": self.task, "kind": "initial"}]
        payload = {
            "model": self.model,
            "external_id": f"gen-{self.decision:08d}",
            "subject_ref": f"s-{rng.getrandbits(40):010x}",
            "version": 1,
            "artifact_sha256": self.artifact,
            "scored_by": "oversight",
            "model_outcome": outcome,
            "confidence": round(rng.uniform(0.5, 1.0), 6),
            "request_sha256": self._hex(),
            "explanation_sha256": self._hex(),
            "policy_version": 1,
            "routed": routed,
            "reasons": sorted(rng.sample(self.reasons, rng.randint(1, 2))) if routed else [],
            "status": "pending_review" if routed else "final",
            "final_outcome": None if routed else outcome,
            "tasks": tasks,
        }
        return {
            "action": "decision.ingested",
            "actor": self.service,
            "object_type": "decision",
            "object_id": self.decision,
            "payload": payload,
        }

    def queue(self, action: str, actor=None, **payload) -> dict:
        return {
            "action": action,
            "actor": actor or self.rng.choice(self.reviewers),
            "object_type": "decision",
            "object_id": self._recent(),
            "payload": {
                "task": self.task - self.rng.randrange(2_000),
                "kind": "initial",
                **payload,
            },
        }

    def submitted(self) -> dict:
        self.review += 1
        override = self.rng.random() < 0.15
        return self.queue(
            "review.submitted",
            review=self.review,
            verdict="override" if override else "agree",
            outcome="deny" if override else "approve",
            agrees_with_model=not override,
            reason_code="missing_information" if override else "",
            rationale="Income could not be verified from the documents on file."
            if override
            else "",
            seconds_spent=round(self.rng.uniform(5, 600), 1),
            model_hidden=self.rng.random() < 0.2,
            gold=False,
        )

    def finalized(self) -> dict:
        override = self.rng.random() < 0.15
        return {
            "action": "decision.finalized",
            "actor": self.rng.choice(self.reviewers),
            "object_type": "decision",
            "object_id": self._recent(),
            "payload": {
                "final_outcome": "deny" if override else "approve",
                "model_outcome": "approve",
                "overridden": override,
                "finalized_by": "reviewer",
                "review": self.review,
                "cancelled_tasks": [],
            },
        }

    def viewed(self) -> dict:
        if self.rng.random() < 0.5:
            return self.queue("case.viewed")
        return {
            "action": "decision.viewed",
            "actor": self.auditor,
            "object_type": "decision",
            "object_id": self._recent(),
            "payload": {},
        }


def stops(existing: int, events: int) -> tuple[list[int], list[int]]:
    """Log sizes at which a checkpoint is signed, and those of them that are measured (each
    right after a checkpoint INCREMENT events earlier)."""
    measured = sorted({p for p in MEASURE_AT if p <= events} | {events})
    measured = [p for p in measured if p - INCREMENT > existing]
    at = set(range(CHECKPOINT_EVERY, events + 1, CHECKPOINT_EVERY)) | {events}
    for p in measured:
        at |= {p - INCREMENT, p}
    return sorted(x for x in at if x > existing), measured


def generate_events(events: int, rng: random.Random) -> dict:
    """Append until the log holds `events` events, signing checkpoints on the way."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from audit.log import record_many
    from audit.models import AuditEvent
    from audit.services import checkpoint_sign
    from reviews.models import Decision

    existing = AuditEvent.objects.count()
    maker = Events(rng, Decision.objects.order_by("-id").values_list("id", flat=True).first())
    at, measured = stops(existing, events)
    out = {"existing": existing, "append_s": 0.0, "build_s": 0.0, "sealing": [], "measured": {}}
    size = existing
    for stop in at:
        while size < stop:
            count = min(BATCH, stop - size)
            with timer() as t:
                entries = [maker.make() for _ in range(count)]
            out["build_s"] += t["seconds"]
            with timer() as t, transaction.atomic():
                record_many(entries)
            out["append_s"] += t["seconds"]
            size += count
        sealed_before = out["sealing"][-1][0] if out["sealing"] else 0
        with CaptureQueriesContext(connection) as queries, timer() as t:
            checkpoint = checkpoint_sign()
        assert checkpoint is not None and checkpoint.tree_size == size
        out["sealing"].append((size, size - sealed_before, t["seconds"]))
        if size in measured:
            sql = [q["sql"] for q in queries.captured_queries]
            out["measured"][size] = (
                t["seconds"],
                len(sql),
                sum("audit_merklenode" in s and s.lstrip().startswith("SELECT") for s in sql),
            )
        print(
            f"  … {size:,} events, checkpoint signed in {t['seconds'] * 1000:,.0f} ms", flush=True
        )
    out["appended"] = size - existing
    return out


def canonical_bytes() -> list[bytes]:
    """Every event's canonical text, UTF-8, in sequence order (either event format)."""
    from audit.log import iter_events, row_text

    return [row_text(row).encode() for row in iter_events(chunk_size=10_000)]


def roots_at(leaves: list[bytes], sizes: set[int]) -> dict[int, bytes]:
    """Merkle roots at the given sizes, from the in-memory leaves alone (one pass)."""
    from audit import merkle

    builder, roots = merkle.TreeBuilder(), {}
    for leaf in leaves:
        builder.append(leaf)
        if builder.size in sizes:
            roots[builder.size] = builder.root()
    return roots


# --- proofs --------------------------------------------------------------------------------------


def proofs(size: int, leaves: list[bytes], rng: random.Random, n: int) -> dict:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from audit import merkle
    from audit.tree import StoredTree
    from tests.fixtures import make_user

    indexes = [rng.randrange(size) for _ in range(n)]
    pairs = []
    for _ in range(n):
        new = rng.randint(2, size)
        pairs.append((rng.randint(1, new - 1), new))
    roots = roots_at(leaves, {size} | {s for pair in pairs for s in pair})

    def inclusion(i: int) -> bool:
        tree = StoredTree()
        proof = tree.inclusion_proof(i, size)
        root = tree.root(size)
        return root == roots[size] and merkle.verify_inclusion(
            leaves[i], i, size, proof, roots[size]
        )

    def consistency(old: int, new: int) -> bool:
        tree = StoredTree()
        proof = tree.consistency_proof(old, new)
        old_root, new_root = tree.root(old), tree.root(new)
        return (old_root, new_root) == (roots[old], roots[new]) and merkle.verify_consistency(
            old, new, roots[old], roots[new], proof
        )

    out = {"fail": 0}
    out["inclusion"], out["consistency"] = [], []
    for i in indexes:
        start = time.perf_counter()
        ok = inclusion(i)
        out["inclusion"].append((time.perf_counter() - start) * 1000)
        out["fail"] += not ok
    for old, new in pairs:
        start = time.perf_counter()
        ok = consistency(old, new)
        out["consistency"].append((time.perf_counter() - start) * 1000)
        out["fail"] += not ok
    with CaptureQueriesContext(connection) as q:
        inclusion(indexes[0])
    out["inclusion_queries"] = len(q.captured_queries)
    with CaptureQueriesContext(connection) as q:
        consistency(*pairs[0])
    out["consistency_queries"] = len(q.captured_queries)

    from core import roles

    user = make_user(AUDITOR, roles.AUDITOR)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)

    def timed_get(url: str, series: str):
        start = time.perf_counter()
        response = client.get(url)
        out[series].append((time.perf_counter() - start) * 1000)
        return response.json() if response.status_code == 200 else None

    def hexes(body: dict) -> list[bytes]:
        return [bytes.fromhex(h) for h in body["proof"]]

    out["http_inclusion"], out["http_consistency"] = [], []
    for i in indexes:
        body = timed_get(f"/api/v1/audit/proofs/inclusion/?seq={i + 1}&size={size}",
                         "http_inclusion")  # fmt: skip
        out["fail"] += not (
            body
            and bytes.fromhex(body["leaf_hash"]) == leaves[i]
            and bytes.fromhex(body["root"]) == roots[size]
            and merkle.verify_inclusion(leaves[i], i, size, hexes(body), roots[size])
        )
    for old, new in pairs:
        body = timed_get(f"/api/v1/audit/proofs/consistency/?from={old}&to={new}",
                         "http_consistency")  # fmt: skip
        out["fail"] += not (
            body
            and bytes.fromhex(body["old_root"]) == roots[old]
            and bytes.fromhex(body["new_root"]) == roots[new]
            and merkle.verify_consistency(old, new, roots[old], roots[new], hexes(body))
        )
    return out


# --- exports -------------------------------------------------------------------------------------


def vm_hwm_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def export_child(fmt: str, python_writer: bool, out: mp.Queue) -> None:
    """A fresh interpreter (spawned, not forked from the bench's own process), loaded as a
    Celery worker loads itself (`celery -A config worker`: Django set up, the task modules
    imported), then one export as the API would queue it, run in this process (no broker):
    its peak RSS is the export's plus what a worker holds before any task. `python_writer`:
    with the Python writer (oversight.exports, as on SQLite) instead of the database's
    (oversight.export_sql)."""
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from config.celery import app

    app.loader.import_default_modules()
    import logging

    from django.contrib.auth.models import User

    from oversight import export_sql, exports, services

    # Quiet the in-process task runner's chatter ("Task … succeeded", kombu's hostname warning).
    logging.getLogger("celery").setLevel(logging.WARNING)
    logging.getLogger("kombu").setLevel(logging.ERROR)

    phases: dict[str, float] = {}

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - start

        return wrapper

    services._cut_checkpoint = timed("checkpoint", services._cut_checkpoint)
    exports.WRITERS[fmt] = timed("rows", exports.WRITERS[fmt])
    if fmt in export_sql.WRITERS:
        export_sql.WRITERS[fmt] = timed("rows", export_sql.WRITERS[fmt])
    exports.write_reviews_csv = timed("reviews.csv", exports.write_reviews_csv)
    export_sql.write_reviews_csv = timed("reviews.csv", export_sql.write_reviews_csv)
    if python_writer:
        export_sql.available = lambda: False
    exports.manifest = timed("manifest", exports.manifest)
    # "zip": packing files written to disk, the manifest and bundle; a CSV from the database is
    # compressed into the zip as its rows come, inside "rows".
    open_package = exports.open_package

    def open_timed(target):
        package = open_package(target)
        package.write = timed("zip", package.write)
        return package

    exports.open_package = open_timed
    exports.finish_package = timed("zip", exports.finish_package)
    auditor = User.objects.get(username=AUDITOR)
    baseline = vm_hwm_mb()
    with timer() as t:
        export = services.export_request(actor=auditor, format=fmt, filters={})
    export.refresh_from_db()
    out.put(
        {
            "seconds": t["seconds"],
            "status": export.status,
            "error": export.error,
            "rows": export.rows,
            "size": export.size_bytes,
            "baseline_mb": baseline,
            "peak_mb": vm_hwm_mb(),
            "phases": phases,
        }
    )


def run_export(fmt: str, python_writer: bool = False) -> dict:
    from django.db import connections

    connections.close_all()
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    child = ctx.Process(target=export_child, args=(fmt, python_writer, out))
    child.start()
    result = out.get()
    child.join()
    return result


def copy_anchor(path: Path, full: bool) -> tuple[int, float]:
    """COPY (the export's query) TO STDOUT (FORMAT csv), read into a file: (rows, seconds).
    `full` (the fair anchor of issue 15): the export's own query (the decisions the auditor
    may learn the answer of) with its reviews and protected attributes, each aggregated once
    as JSON in a GROUP BY joined in, as the export needs them."""
    from django.contrib.auth.models import User
    from django.db import connection

    from oversight import exports
    from reviews.selectors import decisions_answer_visible_to, decisions_visible_to

    auditor = User.objects.get(username=AUDITOR)
    visible = decisions_answer_visible_to if full else decisions_visible_to
    qs = exports.decisions(visible(auditor), {})
    sql, params = qs.values_list(*EXPORT_FIELDS).query.sql_with_params()
    assert not params
    if full:
        sql = f"""SELECT q.*, r.reviews, g.groups FROM ({sql}) q
            LEFT JOIN (SELECT r.decision_id, json_agg(json_build_object('reviewer_id',
                r.reviewer_id, 'kind', r.kind, 'verdict', r.verdict, 'outcome', r.outcome,
                'reason_code', r.reason_code, 'rationale', r.rationale,
                'seconds_spent', r.seconds_spent, 'model_hidden', r.model_hidden,
                'created_at', r.created_at) ORDER BY r.id) AS reviews
              FROM reviews_review r WHERE NOT r.is_gold GROUP BY r.decision_id) r
              ON r.decision_id = q.id
            LEFT JOIN (SELECT p.decision_id, json_object_agg(p.name, p.value) AS groups
              FROM reviews_protectedattribute p GROUP BY p.decision_id) g
              ON g.decision_id = q.id
            ORDER BY q.id"""
    rows = 0
    with (
        timer() as t,
        path.open("wb") as f,
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)") as copy,
    ):
        for block in copy:
            f.write(block)
            rows += 1  # a data message per row
    path.unlink()
    return rows, t["seconds"]


def measure_exports(decisions: int, workdir: Path, python_writer: bool) -> tuple[dict, dict]:
    """Section 4: each format's export in a fresh process (the database's writer, and the
    Python writer too when asked), then the two COPY anchors."""
    from django.contrib.auth.models import User

    from core import roles
    from tests.fixtures import make_user

    if not User.objects.filter(username=AUDITOR).exists():  # --only exports: no section 2
        make_user(AUDITOR, roles.AUDITOR)
    exported = {}
    for fmt in ("csv", "parquet"):
        for writer in ("database", "python") if python_writer else ("database",):
            e = exported[fmt, writer] = run_export(fmt, python_writer=writer == "python")
            assert e["status"] == "done" and e["rows"] == decisions, e
            print(f"  … {fmt} export ({writer} writer) done in {e['seconds']:.0f} s", flush=True)
    copy_rows, copy_s = copy_anchor(workdir / "anchor.csv", full=False)
    assert copy_rows == decisions, (copy_rows, decisions)
    full_rows, full_s = copy_anchor(workdir / "anchor-full.csv", full=True)
    return exported, {"plain": (copy_rows, copy_s), "full": (full_rows, full_s)}


def print_exports(decisions: int, exported: dict, anchors: dict) -> None:
    print(f"4. export of {decisions:,} decisions, export_request → export_run in a fresh process "
          f"(goals: ≥ 0.7 of the fair anchor, peak RSS < 300 MB)")  # fmt: skip
    copy_rows, copy_s = anchors["plain"]
    full_rows, full_s = anchors["full"]
    for (fmt, writer), e in exported.items():
        rate = e["rows"] / e["seconds"]
        report(
            f"{fmt} export, {writer} writer",
            rate,
            "rows/s",
            "COPY of the export's query with its reviews and protected attributes aggregated "
            "(fair anchor)",
            full_rows / full_s,
            goal=0.7,
        )
        phases = ", ".join(f"{k} {v:.1f} s" for k, v in e["phases"].items())
        peak = e["peak_mb"]
        print(
            f"  took {e['seconds']:.1f} s ({phases}); zip {e['size'] / 1e6:,.0f} MB; peak RSS "
            f"{peak:,.0f} MB ({'met' if peak < 300 else 'missed'}: goal < 300 MB; the whole "
            f"process running the export, which before it, loaded as a worker is, held "
            f"{e['baseline_mb']:,.0f} MB); against today's anchor, COPY of the export's query "
            f"alone: {rate / (copy_rows / copy_s):.3f}"
        )
    print(
        f"  anchors: COPY of the export's query TO STDOUT (FORMAT csv) {copy_rows / copy_s:,.0f} "
        f"rows/s ({copy_s:.1f} s); with reviews and protected attributes aggregated once "
        f"{full_rows / full_s:,.0f} rows/s ({full_s:.1f} s)"
    )


# --- the run -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--proofs", type=int, default=200, help="of each kind, each way")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--verify-workers",
        type=int,
        help="worker processes verify_log reads and hashes with on PostgreSQL (default: "
        "audit.verification.WORKERS; 1: all in its own process)",
    )
    parser.add_argument(
        "--only",
        choices=["exports", "verify"],
        help="only section 4 (no audit events generated), or only sections 1 and 3 (no proofs, "
        "no exports)",
    )
    parser.add_argument(
        "--no-python-writer",
        action="store_true",
        help="skip the exports with the Python writer (the SQLite path), measured for comparison",
    )
    args = parser.parse_args()
    wall = time.perf_counter()

    from audit.note import generate_signer

    # Before Django reads its settings: the key checkpoint_sign() signs with.
    os.environ["OVERSIGHT_SIGNING_KEY"] = generate_signer("oversight.local/audit")
    workdir = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    os.environ["OVERSIGHT_EXPORT_DIR"] = str(workdir)
    # The checkpoints' mirror of this run's own log (a fresh database and key each run: the
    # default var/checkpoints would hold the last run's, and refuse these as a forked log).
    os.environ["AUDIT_CHECKPOINT_MIRROR"] = str(workdir / "checkpoints")
    setup_django()

    from audit import merkle, verification
    from audit.models import Checkpoint
    from audit.verification import verify_log

    if args.verify_workers:
        verification.WORKERS = args.verify_workers
    from oversight import demo
    from reviews.models import Decision, Review

    rng = random.Random(args.seed)
    demo.load()
    with timer() as t:
        made = generate_decisions(args.decisions)
    decisions = Decision.objects.count()
    print(
        f"setup: {decisions:,} decisions ({made:,} generated in SQL in {t['seconds']:.0f} s, "
        f"{Review.objects.count():,} reviews)",
        flush=True,
    )

    if args.only == "exports":
        exported, anchors = measure_exports(decisions, workdir, not args.no_python_writer)
        print(f"\nbench/audit.py --only exports — {machine()}, {postgres_version()}")
        print_exports(decisions, exported, anchors)
        print(f"  wall time of the whole run: {(time.perf_counter() - wall) / 60:.1f} min")
        shutil.rmtree(workdir, ignore_errors=True)
        return

    gen = generate_events(args.events, rng)
    appended = gen["appended"]
    sealing = gen["sealing"]
    sealing_s = sum(s for _, _, s in sealing)
    print(
        f"setup: {appended:,} events appended through record_many in {gen['append_s']:.0f} s "
        f"({appended / gen['append_s']:,.0f} events/s; building the entries took "
        f"{gen['build_s']:.0f} s more), {len(sealing)} checkpoints signed in {sealing_s:.1f} s",
        flush=True,
    )

    # 1. Full verification against hashing the same bytes. Sealing leaves one dead row
    # version per event (the staged one); autovacuum would have cleared them in a log that
    # grew over days, but not yet in one made a minute ago: VACUUM as it would.
    from django.db import connection

    with timer() as t, connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE audit_auditevent")
    print(f"  (VACUUM ANALYZE of the log, as autovacuum would: {t['seconds']:.1f} s)", flush=True)
    with timer() as t:
        texts = canonical_bytes()
    texts_s = t["seconds"]
    print(f"  (canonical bytes of {len(texts):,} events read in {texts_s:.0f} s)", flush=True)
    with timer() as t:
        result = verify_log()
    verify_s = t["seconds"]
    assert result.ok, result.message
    assert result.count == len(texts), (result.count, len(texts))
    sha256 = hashlib.sha256
    with timer() as t:
        for text in texts:
            sha256(text).digest()
    sha_s = t["seconds"]
    builder = merkle.TreeBuilder()
    with timer() as t:
        for text in texts:
            sha256(text).hexdigest()
            builder.append(merkle.leaf_hash(text))
    hashing_s = t["seconds"]
    leaves = [merkle.leaf_hash(text) for text in texts]
    mean_bytes = sum(map(len, texts)) / len(texts)
    del texts

    # 3. Checkpoint cost at each size vs rehashing every leaf.
    rehash = {}
    for size in gen["measured"]:
        with timer() as t:
            merkle.root(leaves[:size])
        rehash[size] = t["seconds"]

    if args.only == "verify":
        print(f"\nbench/audit.py --only verify — {machine()}, {postgres_version()}")
        print_verify(result, verify_s, sha_s, hashing_s, mean_bytes, decisions, texts_s)
        print_checkpoints(gen, rehash, sealing, sealing_s)
        print(f"  wall time of the whole run: {(time.perf_counter() - wall) / 60:.1f} min")
        shutil.rmtree(workdir, ignore_errors=True)
        return

    # 2. Proofs on the full log.
    size = Checkpoint.objects.order_by("-tree_size").values_list("tree_size", flat=True).first()
    proved = proofs(size, leaves, rng, args.proofs)
    del leaves

    # 4. Exports.
    exported, anchors = measure_exports(decisions, workdir, not args.no_python_writer)

    # --- the report
    print(f"\nbench/audit.py — {machine()}, {postgres_version()}")
    print_verify(result, verify_s, sha_s, hashing_s, mean_bytes, decisions, texts_s)
    print(
        f"2. proofs on the {size:,}-event tree, a fresh StoredTree each (goal: each < {GOAL_MS} ms)"
    )
    print(f"  inclusion proof + root: {summary_ms(proved['inclusion'])}, "
          f"{proved['inclusion_queries']} queries")  # fmt: skip
    print(f"  consistency proof + both roots: {summary_ms(proved['consistency'])}, "
          f"{proved['consistency_queries']} queries")  # fmt: skip
    print(f"  GET /api/v1/audit/proofs/inclusion/: {summary_ms(proved['http_inclusion'])}")
    print(f"  GET /api/v1/audit/proofs/consistency/: {summary_ms(proved['http_consistency'])}")
    print(f"  proofs that failed to verify against independently computed roots: {proved['fail']}")
    print_checkpoints(gen, rehash, sealing, sealing_s)
    print_exports(decisions, exported, anchors)
    print(f"  wall time of the whole run: {(time.perf_counter() - wall) / 60:.1f} min")
    shutil.rmtree(workdir, ignore_errors=True)


def print_verify(result, verify_s, sha_s, hashing_s, mean_bytes, decisions, texts_s) -> None:
    print(
        f"  log: {result.count:,} events (mean canonical size {mean_bytes:.0f} B), "
        f"{result.checkpoints} signed checkpoints; {decisions:,} decisions"
    )
    from audit import verification

    print(
        "1. full verification, verify_log() (audit_verify): chain, leaves, roots, signatures "
        f"({verification.WORKERS} worker processes from {verification.PARALLEL_MIN:,} events)"
    )
    report(
        "verify_log",
        result.count / verify_s,
        "events/s",
        "hashlib.sha256 over the same canonical bytes in memory",
        result.count / sha_s,
        goal=0.2,
    )
    print(
        f"  took {verify_s:.1f} s (goal for 1M events: ≤ 10 s, "
        f"{verify_s * 1_000_000 / result.count:.1f} s at this rate); context: only the hashing "
        f"it must do, in memory (chain SHA-256, leaf SHA-256, TreeBuilder): "
        f"{result.count / hashing_s:,.0f} events/s, {sha_s / hashing_s:.3f} of the anchor; "
        f"verify_log is {hashing_s / verify_s:.3f} of that; reading the anchor's canonical bytes "
        f"(Django ORM, Python text) took {texts_s:.1f} s"
    )


def print_checkpoints(gen, rehash, sealing, sealing_s) -> None:
    print(f"3. checkpoint_sign() after {INCREMENT:,} new events, by log size "
          f"(anchor: merkle.root over all n in-memory leaves)")  # fmt: skip
    for n, (seconds, queries, node_queries) in gen["measured"].items():
        print(
            f"  n = {n:>9,}: {seconds * 1000:7.1f} ms, {queries} queries "
            f"({node_queries} of stored nodes); anchor, rehash: {rehash[n] * 1000:8.1f} ms; "
            f"anchor/checkpoint {rehash[n] / seconds:.2f}"
        )
    sizes = list(gen["measured"])
    if len(sizes) > 1:
        (a, _, na), (b, _, nb) = gen["measured"][sizes[0]], gen["measured"][sizes[-1]]
        print(
            f"  from n = {sizes[0]:,} to {sizes[-1]:,} ({sizes[-1] / sizes[0]:,.0f}× the log): "
            f"checkpoint ×{b / a:.2f}, stored-node queries {na} → {nb}; "
            f"rehash anchor ×{rehash[sizes[-1]] / rehash[sizes[0]]:.1f}"
        )
    bulk = [(sealed, s) for n, sealed, s in sealing if n not in gen["measured"]]
    if bulk:
        sealed_total = sum(x for x, _ in bulk)
        bulk_s = sum(s for _, s in bulk)
        print(
            f"  sealing while appending: {len(bulk)} checkpoints sealing {sealed_total:,} events "
            f"took {bulk_s:.1f} s ({sealed_total / bulk_s:,.0f} events/s); all "
            f"{len(sealing)} checkpoints {sealing_s:.1f} s"
        )


if __name__ == "__main__":
    main()
