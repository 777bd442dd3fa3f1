"""The review queue under load: 16 reviewers claiming and answering at once.

Setup (not measured): the demo model, then decisions generated in SQL from a real routed
decision (1,000,000 by default), open review tasks on the first 100,000 of them, and for each
reviewer a long history: 5,000 past done tasks (--history) on decisions beyond those, generated
in SQL (the "never a task on a decision you took part in" rule probes it on every claim).

Measured, in the same run on the same machine, with the real audit sealer running beside
(`manage.py audit_sealer`, a process of its own, as `make worker` starts it):
- Services: 16 reviewer processes (like 16 gunicorn workers) each loop: claim the next task
  through `task_claim_next` (one UPDATE … SKIP LOCKED … RETURNING, the audit event, commit) and
  answer it through `review_submit` (review, final outcome, label, audit events, commit), for a
  fixed window. Reported: claims/s, claim p50/p99, answer latency.
- Over HTTP with session auth: the same loop through the real URLconf and middleware (sessions,
  CSRF, authentication, throttling, DRF): POST /api/v1/review-tasks/claim/ then POST
  /api/v1/review-tasks/<id>/decision/, each reviewer logged in with a session. The requests
  are made in-process by Django's test Client (no socket and no gunicorn: what it leaves out is
  the HTTP server's parsing and the network), one client per reviewer process.
- Double assignments (must be 0): in the workers' own records, and in the audit log's
  task.claimed / task.expired / task.released events once everything is sealed.
- Seal lag: for the events staged during each window, p50/p99 of (seal time − staging time).
  An event's `recorded_at` is taken when it is staged, a few ms before its transaction commits;
  its `time` is the sealer's batch time, taken before the batch commits: so this is the lag
  from (about) commit to sealed. Goal: p99 < 1 s.
- Anchor: the same 16 processes running the raw SQL loop on a scratch copy of the open tasks:
  `UPDATE … WHERE id = (SELECT id … ORDER BY priority DESC, due_at, id FOR UPDATE SKIP LOCKED
  LIMIT 1)`, commit, then mark it done, commit.
- Statements per claim and per answer (services and HTTP), counted once on a quiet database.
- The queue page and a case page: p50/p95 over repeated GETs with all those rows present.

Celery: the bench has no broker. In the reviewer processes, what an answer hands to Celery after
commit (the label's outbox delivery, and every so many labels a model's retraining) is queued
to an in-memory broker that nobody reads, as a web process with a broker queues it, instead of
being run inside the answer by Celery's eager mode (--in-process-tasks does that, as the runs
before 2026-11-29 did; retraining in a reviewer's answer then costs seconds of CPU).

API_RATE_PER_CALLER is raised for the run (each reviewer makes far more than the default
6,000 requests a minute's allowance would notice, but the bench must not measure the throttle).

    python -m bench.claim [--decisions 1000000] [--tasks 100000] [--seconds 20] [--workers 16]
                          [--history 5000] [--page-requests 40] [--in-process-tasks]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue
import signal
import subprocess
import sys
import time
import traceback
from collections import defaultdict
from datetime import datetime

from bench.common import (
    ROOT,
    machine,
    percentile,
    postgres_version,
    setup_django,
    summary_ms,
    timer,
)


def generate(decisions: int, tasks: int) -> None:
    """Copies of a real routed decision (new external ids), open tasks on the first `tasks`."""
    from django.db import connection

    from reviews.models import Decision

    template = Decision.objects.filter(routed=True).order_by("id").first()
    columns = [f.column for f in Decision._meta.concrete_fields if f.column != "id"]
    # Awaiting review, whatever the template's fate (the demo's simulated work settles it).
    varying = {
        "external_id": "'gen-' || n",
        "subject_ref": "'s-gen-' || n",
        "status": "'pending_review'",
        "final_outcome": "''",
        "finalized_by": "''",
        "finalized_by_user_id": "NULL",
        "finalized_at": "NULL",
    }
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


def histories(usernames: list[str], tasks: int, decisions: int, history: int) -> int:
    """`history` done tasks for each reviewer, on generated decisions past the first `tasks`
    (which carry the open tasks): one INSERT … SELECT per reviewer. Returns the size given."""
    from django.db import connection

    available = decisions - tasks
    history = min(history, available)
    with connection.cursor() as cursor:
        for n, username in enumerate(usernames):
            start = tasks + (n * history) % max(1, available - history + 1)
            cursor.execute(
                """INSERT INTO reviews_reviewtask (decision_id, model_id, kind, state, priority,
                       due_at, senior_only, blind, is_gold, note, assignee_id, claimed_at,
                       lease_expires_at, created_at, closed_at)
                   SELECT d.id, d.model_id, 'initial', 'done', 10, past, false, false, false, '',
                       u.id, past, past, past, past
                   FROM (SELECT id, model_id FROM reviews_decision
                         WHERE external_id LIKE 'gen-%%' ORDER BY id OFFSET %s LIMIT %s) AS d,
                        (SELECT id FROM auth_user WHERE username = %s) AS u,
                        (SELECT now() - interval '30 days' AS past) AS t""",
                [start, history, username],
            )
        cursor.execute("ANALYZE reviews_reviewtask")
    return history


# --- our claim loop ---------------------------------------------------------------------------

EAGER = {"on": False}  # --in-process-tasks


def as_with_a_broker() -> None:
    """In a reviewer process: what a change hands to Celery after commit (the label's outbox
    delivery, retraining every so many labels) is queued, as a web process with a broker does,
    here to an in-memory broker nobody reads, instead of run inside the answer. The bench has
    no broker, and Celery's eager mode would otherwise run a model's retraining (seconds of CPU)
    in some reviewer's answer. With --in-process-tasks it is run there, as before."""
    if EAGER["on"]:
        return
    from config.celery import app

    app.conf.task_always_eager = False
    app.conf.broker_url = "memory://"


def oversight_worker(n: int, seconds: float, out: mp.Queue) -> None:
    """Claim and answer for `seconds`; report every (task id, reviewer id) claim it got."""

    def loop() -> tuple[list, list, list]:
        from django.contrib.auth.models import User

        from reviews import services

        as_with_a_broker()
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


CLAIM_URL = "/api/v1/review-tasks/claim/"


def http_worker(n: int, seconds: float, out: mp.Queue) -> None:
    """The same loop over HTTP with session auth: Django's test Client through the real URLconf
    and middleware, logged in with a session (in-process: no socket, no HTTP server)."""

    def loop() -> tuple[list, list, list]:
        from django.contrib.auth.models import User
        from django.test import Client

        as_with_a_broker()
        reviewer = User.objects.get(username=f"bench-r{n:02d}")
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(reviewer)
        claims, latencies, submit_ms = [], [], []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            start = time.perf_counter()
            response = client.post(CLAIM_URL, {}, "application/json")
            latencies.append((time.perf_counter() - start) * 1000)
            if response.status_code == 204:
                break
            if response.status_code != 200:
                raise RuntimeError(f"claim: {response.status_code} {response.content[:300]!r}")
            task_id = response.json()["id"]
            claims.append((task_id, reviewer.pk))
            start = time.perf_counter()
            response = client.post(
                f"/api/v1/review-tasks/{task_id}/decision/",
                {"verdict": "agree"},
                content_type="application/json",
            )
            submit_ms.append((time.perf_counter() - start) * 1000)
            if response.status_code not in (200, 201):
                raise RuntimeError(f"answer: {response.status_code} {response.content[:300]!r}")
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


def doubles_in_audit(after_id: int) -> int:
    """Tasks claimed by a second reviewer while a first still held them (no expiry or release
    in between), from the audit log's task.claimed, task.expired and task.released events
    staged after `after_id`, in the log's order (everything is sealed by then)."""
    from audit.models import AuditEvent

    events = (
        AuditEvent.objects.filter(
            id__gt=after_id, action__in=("task.claimed", "task.expired", "task.released")
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


def last_audit_id() -> int:
    from audit.models import AuditEvent

    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


# --- the sealer, and the lag from commit to sealed -----------------------------------------------


def start_sealer() -> subprocess.Popen:
    """`manage.py audit_sealer`, the real process, on the bench database (the environment
    setup_django set)."""
    process = subprocess.Popen(
        [sys.executable, "manage.py", "audit_sealer"],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        text=True,
    )
    # Loading Django and the apps takes seconds on a busy machine: the windows start once it
    # says it is sealing.
    line = process.stdout.readline()
    if "Sealing" not in line:
        process.kill()
        raise SystemExit(f"bench/claim.py: the sealer did not start: {line!r}")
    return process


def stop_sealer(process: subprocess.Popen, *, drain: float = 30) -> tuple[int, datetime]:
    """Let the sealer catch up (up to `drain` seconds), stop it (SIGTERM); returns how many
    events were still staged when it stopped (sealed after, by seal_all, and left out of the
    lag figures) and when it stopped."""
    from django.utils import timezone

    from audit import sealer

    deadline = time.monotonic() + drain
    while sealer.staged_count() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    stopped = timezone.now()
    left = sealer.staged_count()
    sealer.seal_all()
    return left, stopped


def seal_lag(since: datetime, until: datetime, stopped: datetime) -> list[float]:
    """Seconds from staging (about the commit) to sealed, of the events staged in the window
    that the running sealer sealed."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT EXTRACT(EPOCH FROM time - recorded_at) FROM audit_auditevent
               WHERE recorded_at >= %s AND recorded_at < %s AND time IS NOT NULL
                 AND time <= %s""",
            [since, until, stopped],
        )
        return [float(row[0]) for row in cursor.fetchall()]


def lag_text(values: list[float]) -> str:
    if not values:
        return "no events"
    return (
        f"p50 {percentile(values, 50) * 1000:.0f} ms, p99 {percentile(values, 99) * 1000:.0f} ms,"
        f" max {max(values) * 1000:.0f} ms (n={len(values):,})"
    )


# --- statements per claim and per answer ------------------------------------------------------


def statements() -> dict[str, int]:
    """Statements sent for one claim and one answer, through services and over HTTP, by a
    reviewer of their own (with no history), after one warm-up of each (roles cached on the
    reviewer object, prepared statements as they would be); BEGIN and COMMIT left out."""
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from reviews import services
    from tests.fixtures import make_user

    make_user("bench-probe", "reviewer")
    reviewer = User.objects.get(username="bench-probe")
    counts = {}
    task = services.task_claim_next(reviewer=reviewer)
    services.review_submit(task_id=task.pk, reviewer=reviewer, verdict="agree")
    with CaptureQueriesContext(connection) as claim:
        task = services.task_claim_next(reviewer=reviewer)
    with CaptureQueriesContext(connection) as answer:
        services.review_submit(task_id=task.pk, reviewer=reviewer, verdict="agree")
    counts["claim"], counts["answer"] = _in_transaction(claim), _in_transaction(answer)
    counts["after commit"] = _after_commit(answer)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(reviewer)
    task_id = client.post(CLAIM_URL, {}, "application/json").json()["id"]
    client.post(
        f"/api/v1/review-tasks/{task_id}/decision/", {"verdict": "agree"}, "application/json"
    )
    with CaptureQueriesContext(connection) as claim:
        task_id = client.post(CLAIM_URL, {}, "application/json").json()["id"]
    with CaptureQueriesContext(connection) as answer:
        client.post(
            f"/api/v1/review-tasks/{task_id}/decision/",
            {"verdict": "agree"},
            content_type="application/json",
        )
    counts["http claim"], counts["http answer"] = _in_transaction(claim), _in_transaction(answer)
    counts["http claim all"], counts["http answer all"] = _all(claim), _all(answer)
    return counts


def _all(captured) -> int:
    return sum(1 for q in captured.captured_queries if not q["sql"].startswith(_NOT_COUNTED))


_NOT_COUNTED = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE SAVEPOINT")


def _in_transaction(captured) -> int:
    """Statements up to the first COMMIT (the change's own transaction, and for HTTP the
    session and user lookups before it), BEGIN, COMMIT and savepoints left out."""
    sql = [q["sql"] for q in captured.captured_queries]
    end = next((i for i, s in enumerate(sql) if s.startswith("COMMIT")), len(sql))
    return sum(1 for s in sql[:end] if not s.startswith(_NOT_COUNTED))


def _after_commit(captured) -> int:
    """Statements after the change's commit: work run in-process without a broker (the label's
    outbox delivery), which a Celery worker does in production."""
    sql = [q["sql"] for q in captured.captured_queries]
    end = next((i for i, s in enumerate(sql) if s.startswith("COMMIT")), len(sql))
    return sum(1 for s in sql[end:] if not s.startswith(_NOT_COUNTED))


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
    parser.add_argument("--history", type=int, default=5_000, help="past done tasks a reviewer")
    parser.add_argument("--page-requests", type=int, default=40)
    parser.add_argument(
        "--in-process-tasks",
        action="store_true",
        help="run what answers hand to Celery inside them (eager), as runs before 2026-11-29 did",
    )
    args = parser.parse_args()
    EAGER["on"] = args.in_process_tasks
    os.environ["API_RATE_PER_CALLER"] = "100000000/minute"  # measure the queue, not the throttle
    url = setup_django()

    from django.utils import timezone

    from oversight import demo
    from reviews.models import Decision, ReviewTask
    from tests.fixtures import make_user

    demo.load()
    with timer() as t:
        generate(args.decisions, args.tasks)
    usernames = [f"bench-r{n:02d}" for n in range(args.workers)]
    for username in usernames:
        make_user(username, "reviewer")
    with timer() as h:
        history = histories(usernames, args.tasks, args.decisions, args.history)
    open_tasks = ReviewTask.objects.filter(state="open").count()
    print(
        f"setup: {Decision.objects.count():,} decisions, {open_tasks:,} open tasks "
        f"(generated in {t['seconds']:.0f} s); {history:,} past done tasks for each of "
        f"{args.workers} reviewers ({h['seconds']:.0f} s)"
    )
    counts = statements()
    dsn = url.replace("postgres://", "postgresql://")
    scratch_table(dsn)

    from audit import sealer as audit_sealer

    audit_sealer.seal_all()  # the setup's events: the windows start with nothing waiting
    before = last_audit_id()
    process = start_sealer()
    since = timezone.now()
    ours, latencies, submits, elapsed = run(oversight_worker, args.workers, args.seconds)
    between = timezone.now()
    http, http_latencies, http_submits, http_elapsed = run(http_worker, args.workers, args.seconds)
    until = timezone.now()
    left, stopped = stop_sealer(process)
    lag, http_lag = seal_lag(since, between, stopped), seal_lag(between, until, stopped)
    raw, raw_latencies, _, raw_elapsed = run(raw_worker, args.workers, args.seconds, dsn)

    everyone = ours + http
    doubles, audit_doubles = doubles_in_records(everyone), doubles_in_audit(before)
    rate, http_rate = len(ours) / elapsed, len(http) / http_elapsed
    raw_rate = len(raw) / raw_elapsed
    queue_ms, case_ms = page_latency(args.page_requests)

    raw_p50, raw_p99 = percentile(raw_latencies, 50), percentile(raw_latencies, 99)
    tasks_text = "run in-process (eager)" if EAGER["on"] else "queued to a broker, not run"
    anchor = f"anchor {raw_rate:,.0f}/s, p50 {raw_p50:.1f} ms, p99 {raw_p99:.1f} ms"
    print(f"bench/claim.py — {machine()}, {postgres_version()}")
    print(f"  {args.workers} reviewer processes, {args.seconds:.0f} s each run, "
          f"{args.tasks:,} open tasks, {args.decisions:,} decisions, {history:,} past tasks "
          f"a reviewer; the audit sealer running; Celery tasks {tasks_text}")  # fmt: skip
    print(
        f"  anchor, raw SKIP LOCKED claim + done loop on a scratch table: {raw_rate:,.0f} "
        f"claims/s; claim p50 {raw_p50:.1f} ms, p99 {raw_p99:.1f} ms"
    )
    print(
        f"  claim + answer, services: {rate:,.0f} claims/s — ratio {rate / raw_rate:.3f} "
        f"(goal ≥ 0.3); claim p50 {percentile(latencies, 50):.1f} ms, p99 "
        f"{percentile(latencies, 99):.1f} ms (goal < 20 ms; {anchor})"
    )
    print(f"    claim {summary_ms(latencies)}; answer {summary_ms(submits)}")
    print(
        f"  claim + answer, HTTP with session auth (in-process test Client): {http_rate:,.0f} "
        f"claims/s — ratio {http_rate / raw_rate:.3f} (goal ≥ 0.3); claim p50 "
        f"{percentile(http_latencies, 50):.1f} ms, p99 {percentile(http_latencies, 99):.1f} ms "
        f"(goal < 20 ms; {anchor})"
    )
    print(f"    claim {summary_ms(http_latencies)}; answer {summary_ms(http_submits)}")
    print(
        f"  double assignments (must be 0): {doubles} in the workers' claim records, "
        f"{audit_doubles} in the audit log's task.claimed events"
    )
    print(
        f"  seal lag, staged (≈ commit) to sealed, `manage.py audit_sealer` beside: services "
        f"{lag_text(lag)}; HTTP {lag_text(http_lag)} (goal p99 < 1 s; {left:,} events still "
        "staged when the sealer stopped)"
    )
    print(
        f"  statements in the transaction (BEGIN, COMMIT, savepoints not counted): claim "
        f"{counts['claim']}, answer {counts['answer']} (services; then {counts['after commit']}"
        f" after commit, the label's outbox delivery run in-process without a broker); claim "
        f"{counts['http claim']}, answer {counts['http answer']} (HTTP, the session's and "
        f"user's lookups included; {counts['http claim all']} and {counts['http answer all']} "
        "in all, with the response and what runs after commit)"
    )
    print(f"  queue page /review/: {summary_ms(queue_ms)}")
    print(f"  case page /review/tasks/<id>/: {summary_ms(case_ms)}")


if __name__ == "__main__":
    main()
