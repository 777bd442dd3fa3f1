"""The review queue under load: 16 reviewers claiming and answering at once.

Setup (not measured): the demo model, then decisions generated in SQL from a real routed
decision (1,000,000 by default) and open review tasks on the first 100,000 of them.

Measured, in the same run on the same machine:
- 16 reviewer processes (like 16 gunicorn workers) each loop: claim the next task through
  `task_claim_next` (lease expiry check, eligibility, SKIP LOCKED, the audit event, commit) and
  answer it through `review_submit` (review, final outcome, audit events, commit), for a fixed
  window. Reported: claims/s, claim p50/p99, and double assignments (must be 0).
- Anchor: the same 16 processes running the raw SQL loop on a scratch copy of the open tasks:
  `UPDATE … WHERE id = (SELECT id … ORDER BY priority DESC, due_at, id FOR UPDATE SKIP LOCKED
  LIMIT 1)`, commit, then mark it done, commit.
- The queue page and a case page: p50/p95 over repeated GETs with all those rows present.

    python -m bench.claim [--decisions 1000000] [--tasks 100000] [--seconds 20] [--workers 16]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import queue
import time
import traceback
from collections import defaultdict

from bench.common import machine, percentile, postgres_version, setup_django, summary_ms, timer


def generate(decisions: int, tasks: int) -> None:
    """Copies of a real routed decision (new external ids), open tasks on the first `tasks`."""
    from django.db import connection

    from reviews.models import Decision

    template = Decision.objects.filter(routed=True).order_by("id").first()
    columns = [f.column for f in Decision._meta.concrete_fields if f.column != "id"]
    varying = {"external_id": "'gen-' || n", "subject_ref": "'s-gen-' || n"}
    select = ", ".join(varying.get(c, c) for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO reviews_decision ({', '.join(columns)}) "
            f"SELECT {select} FROM reviews_decision, generate_series(1, %s) AS n WHERE id = %s",
            [decisions, template.pk],
        )
        cursor.execute(
            """INSERT INTO reviews_reviewtask (decision_id, model_id, kind, state, priority,
                   due_at, senior_only, blind, is_gold, note, created_at)
               SELECT id, model_id, 'initial', 'open', (ARRAY[10, 20, 50, 100])[1 + (id %% 4)],
                   now() + (id %% 4800) * interval '1 minute', false, false, false, '', now()
               FROM reviews_decision WHERE external_id LIKE 'gen-%%' ORDER BY id LIMIT %s""",
            [tasks],
        )
        cursor.execute("ANALYZE reviews_decision; ANALYZE reviews_reviewtask")


# --- our claim loop ---------------------------------------------------------------------------


def oversight_worker(n: int, seconds: float, out: mp.Queue) -> None:
    """Claim and answer for `seconds`; report every (task id, reviewer id) claim it got."""

    def loop() -> tuple[list, list, list]:
        from django.contrib.auth.models import User

        from reviews import services

        reviewer = User.objects.get(username=f"bench-r{n:02d}")
        claims, latencies, submit_ms = [], [], []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            start = time.perf_counter()
            task = services.task_claim_next(reviewer=reviewer)
            latencies.append((time.perf_counter() - start) * 1000)
            if task is None:
                break
            claims.append((task.pk, reviewer.pk))
            start = time.perf_counter()
            services.review_submit(task_id=task.pk, reviewer=reviewer, verdict="agree")
            submit_ms.append((time.perf_counter() - start) * 1000)
        return claims, latencies, submit_ms

    _report(n, loop, out)


def _report(n: int, loop, out: mp.Queue) -> None:
    """Put (worker, result, None) or (worker, None, traceback): a failure is reported, not lost."""
    from django.db import connection

    try:
        out.put((n, loop(), None))
    except BaseException:
        out.put((n, None, traceback.format_exc()))
    finally:
        connection.close()


# --- the anchor: raw SKIP LOCKED on a scratch table --------------------------------------------

CLAIM_SQL = """UPDATE bench_tasks SET state = 'claimed', assignee = %s
    WHERE id = (SELECT id FROM bench_tasks WHERE state = 'open'
                ORDER BY priority DESC, due_at, id FOR UPDATE SKIP LOCKED LIMIT 1)
    RETURNING id"""


def raw_worker(n: int, seconds: float, dsn: str, out: mp.Queue) -> None:
    def loop() -> tuple[list, list, list]:
        import psycopg

        claims, latencies = [], []
        with psycopg.connect(dsn) as conn:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                start = time.perf_counter()
                row = conn.execute(CLAIM_SQL, [n]).fetchone()
                conn.commit()
                latencies.append((time.perf_counter() - start) * 1000)
                if row is None:
                    break
                claims.append((row[0], n))
                conn.execute("UPDATE bench_tasks SET state = 'done' WHERE id = %s", [row[0]])
                conn.commit()
        return claims, latencies, []

    _report(n, loop, out)


def scratch_table(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_tasks")
        conn.execute(
            """CREATE TABLE bench_tasks AS SELECT id, state, priority, due_at, 0 AS assignee
               FROM reviews_reviewtask WHERE state = 'open'"""
        )
        conn.execute("ALTER TABLE bench_tasks ADD PRIMARY KEY (id)")
        conn.execute("CREATE INDEX ON bench_tasks (priority DESC, due_at, id) WHERE state = 'open'")
        conn.execute("ANALYZE bench_tasks")


class WorkerFailed(SystemExit):
    """A worker died or raised: the run's figures would be wrong, so there are none."""


def run(target, workers: int, seconds: float, *args) -> tuple[list, list, list, float]:
    from django.db import connections

    connections.close_all()  # children open their own connections
    ctx = mp.get_context("fork")
    out: mp.Queue = ctx.Queue()
    processes = [ctx.Process(target=target, args=(n, seconds, *args, out)) for n in range(workers)]
    with timer() as t:
        for process in processes:
            process.start()
        results = _collect(out, processes, timeout=seconds + REPORT_GRACE)
        for process in processes:
            process.join()
    claims = [c for r in results for c in r[0]]
    latencies = [x for r in results for x in r[1]]
    submits = [x for r in results for x in r[2]]
    return claims, latencies, submits, t["seconds"]


REPORT_GRACE = 120  # seconds a worker may take to report after its window closes
POLL = 5


def _collect(out: mp.Queue, processes: list, *, timeout: float) -> list:
    """Every worker's result. A worker that raised, died without reporting, or did not report in
    time stops the run with a clear message instead of leaving the parent waiting forever."""
    results: dict[int, tuple] = {}
    suspects: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(results) < len(processes):
        try:
            n, result, error = out.get(timeout=POLL)
        except queue.Empty:
            suspects = _check_alive(processes, results, suspects, deadline)
            continue
        if error is not None:
            _stop(processes, f"worker {n} failed:\n{error}")
        results[n] = result
    return [results[n] for n in sorted(results)]


def _check_alive(processes: list, results: dict, suspects: set[int], deadline: float) -> set[int]:
    """Workers found exited without a report; stop if any was already so at the last poll (a
    worker's report is flushed before it exits, so a whole poll later it is not coming)."""
    dead = {n for n, p in enumerate(processes) if n not in results and p.exitcode is not None}
    if dead & suspects:
        _stop(processes, "; ".join(
            f"worker {n} (pid {processes[n].pid}) died with exit code {processes[n].exitcode} "
            "without reporting" for n in sorted(dead & suspects)
        ))  # fmt: skip
    if time.monotonic() > deadline:
        late = [str(n) for n in range(len(processes)) if n not in results]
        _stop(processes, f"workers {', '.join(late)} did not report within the time allowed")
    return dead


def _stop(processes: list, message: str) -> None:
    for process in processes:
        if process.is_alive():
            process.terminate()
    raise WorkerFailed(f"bench/claim.py: {message}")


# --- double assignments ----------------------------------------------------------------------


def doubles_in_records(claims: list[tuple[int, int]]) -> int:
    """Tasks that the workers' own records show claimed by more than one reviewer."""
    reviewers: dict[int, set[int]] = defaultdict(set)
    for task_id, reviewer in claims:
        reviewers[task_id].add(reviewer)
    return sum(1 for who in reviewers.values() if len(who) > 1)


def doubles_in_audit(after_seq: int) -> int:
    """Tasks claimed by a second reviewer while a first still held them (no expiry or release
    in between), from the audit log's task.claimed, task.expired and task.released events."""
    from audit.models import AuditEvent

    events = (
        AuditEvent.objects.filter(
            seq__gt=after_seq, action__in=("task.claimed", "task.expired", "task.released")
        )
        .order_by("seq")
        .values_list("action", "actor", "payload")
    )
    holder: dict[int, str | None] = {}
    doubles: set[int] = set()
    for action, actor, payload in events.iterator(chunk_size=10_000):
        task = json.loads(payload)["task"]
        if action != "task.claimed":
            holder[task] = None
        elif holder.get(task) not in (None, actor):
            doubles.add(task)
        else:
            holder[task] = actor
    return len(doubles)


def last_audit_seq() -> int:
    from audit.models import AuditEvent

    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


# --- pages ---------------------------------------------------------------------------------


def page_latency(requests: int) -> tuple[list[float], list[float]]:
    from django.contrib.auth.models import User
    from django.test import Client

    from reviews import services

    client = Client(HTTP_HOST="127.0.0.1")
    reviewer = User.objects.get(username="alice")
    client.force_login(reviewer)
    queue = []
    for _ in range(requests):
        start = time.perf_counter()
        assert client.get("/review/").status_code == 200
        queue.append((time.perf_counter() - start) * 1000)
    task = services.task_claim_next(reviewer=reviewer)
    case = []
    for _ in range(requests):
        start = time.perf_counter()
        assert client.get(f"/review/tasks/{task.pk}/").status_code == 200
        case.append((time.perf_counter() - start) * 1000)
    return queue, case


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--page-requests", type=int, default=40)
    args = parser.parse_args()
    url = setup_django()

    from oversight import demo
    from reviews.models import Decision, ReviewTask
    from tests.fixtures import make_user

    demo.load()
    with timer() as t:
        generate(args.decisions, args.tasks)
    open_tasks = ReviewTask.objects.filter(state="open").count()
    print(
        f"setup: {Decision.objects.count():,} decisions, {open_tasks:,} open tasks "
        f"(generated in {t['seconds']:.0f} s)"
    )
    for n in range(args.workers):
        make_user(f"bench-r{n:02d}", "reviewer")
    dsn = url.replace("postgres://", "postgresql://")
    scratch_table(dsn)

    before = last_audit_seq()
    ours, latencies, submits, elapsed = run(oversight_worker, args.workers, args.seconds)
    raw, raw_latencies, _, raw_elapsed = run(raw_worker, args.workers, args.seconds, dsn)

    doubles, audit_doubles = doubles_in_records(ours), doubles_in_audit(before)
    rate, raw_rate = len(ours) / elapsed, len(raw) / raw_elapsed
    queue_ms, case_ms = page_latency(args.page_requests)

    print(f"bench/claim.py — {machine()}, {postgres_version()}")
    print(f"  {args.workers} reviewer processes, {args.seconds:.0f} s each run, "
          f"{args.tasks:,} open tasks, {args.decisions:,} decisions")  # fmt: skip
    print(f"  claim + answer: {rate:,.0f} claims/s; claim {summary_ms(latencies)}")
    print(f"  answer (review_submit): {summary_ms(submits)}")
    print(
        f"  double assignments (must be 0): {doubles} in the workers' claim records, "
        f"{audit_doubles} in the audit log's task.claimed events"
    )
    raw_p50, raw_p99 = percentile(raw_latencies, 50), percentile(raw_latencies, 99)
    print(
        f"  anchor, raw SKIP LOCKED claim + done loop on a scratch table: {raw_rate:,.0f} "
        f"claims/s; claim p50 {raw_p50:.1f} ms, p99 {raw_p99:.1f} ms"
    )
    print(f"  ratio: {rate / raw_rate:.3f}  (goal ≥ 0.3; claim p99 goal < 20 ms)")
    print(f"  queue page /review/: {summary_ms(queue_ms)}")
    print(f"  case page /review/tasks/<id>/: {summary_ms(case_ms)}")


if __name__ == "__main__":
    main()
