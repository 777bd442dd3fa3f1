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
import multiprocessing as mp
import time
from collections import Counter

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
    from django.contrib.auth.models import User
    from django.db import connection

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
        claims.append(task.pk)
        start = time.perf_counter()
        services.review_submit(task_id=task.pk, reviewer=reviewer, data={"verdict": "agree"})
        submit_ms.append((time.perf_counter() - start) * 1000)
    connection.close()
    out.put((claims, latencies, submit_ms))


# --- the anchor: raw SKIP LOCKED on a scratch table --------------------------------------------

CLAIM_SQL = """UPDATE bench_tasks SET state = 'claimed', assignee = %s
    WHERE id = (SELECT id FROM bench_tasks WHERE state = 'open'
                ORDER BY priority DESC, due_at, id FOR UPDATE SKIP LOCKED LIMIT 1)
    RETURNING id"""


def raw_worker(n: int, seconds: float, dsn: str, out: mp.Queue) -> None:
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
            claims.append(row[0])
            conn.execute("UPDATE bench_tasks SET state = 'done' WHERE id = %s", [row[0]])
            conn.commit()
    out.put((claims, latencies, []))


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


def run(target, workers: int, *args) -> tuple[list, list, list, float]:
    from django.db import connections

    connections.close_all()  # children open their own connections
    out: mp.Queue = mp.Queue()
    ctx = mp.get_context("fork")
    processes = [ctx.Process(target=target, args=(n, *args, out)) for n in range(workers)]
    with timer() as t:
        for process in processes:
            process.start()
        results = [out.get() for _ in processes]
        for process in processes:
            process.join()
    claims = [c for r in results for c in r[0]]
    latencies = [x for r in results for x in r[1]]
    submits = [x for r in results for x in r[2]]
    return claims, latencies, submits, t["seconds"]


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

    from django.db.models import Count

    from core import demo
    from reviews.models import Decision, Review, ReviewTask
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

    ours, latencies, submits, elapsed = run(oversight_worker, args.workers, args.seconds)
    raw, raw_latencies, _, raw_elapsed = run(raw_worker, args.workers, args.seconds, dsn)

    doubles = sum(1 for count in Counter(ours).values() if count > 1)
    doubles += Review.objects.values("task").annotate(n=Count("id")).filter(n__gt=1).count()
    rate, raw_rate = len(ours) / elapsed, len(raw) / raw_elapsed
    queue_ms, case_ms = page_latency(args.page_requests)

    print(f"bench/claim.py — {machine()}, {postgres_version()}")
    print(f"  {args.workers} reviewer processes, {args.seconds:.0f} s each run, "
          f"{args.tasks:,} open tasks, {args.decisions:,} decisions")  # fmt: skip
    print(f"  claim + answer: {rate:,.0f} claims/s; claim {summary_ms(latencies)}")
    print(f"  answer (review_submit): {summary_ms(submits)}")
    print(f"  double assignments: {doubles}")
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
