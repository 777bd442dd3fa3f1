"""Ingestion throughput: POST /api/v1/decisions/bulk/ against COPY of the same rows.

The figure: bulks of 1,000 decisions sent over HTTP by 4 client processes at once to a real
server (gunicorn, sync workers, `DATABASE_CONN_MAX_AGE=60` as in production, the audit sealer
running beside it as `make worker` runs it), from the moment all four start until the last
response. Everything a real request does is in it: token authentication, JSON parsing,
validation against the schema, scoring with the champion, explanations and counterfactuals,
routing, storing decisions, protected attributes, review tasks and one staged audit event per
decision. Also printed: today's figure, the same bulks sent one after another in-process
through Django's WSGI handler (the test client), and single POST latency.

Two anchors, measured in the same run:
- plain COPY: the same decisions' 5 request columns (JSON as jsonb) into a scratch table,
  1,000 rows per COPY and one commit each (goal: the ingest ≥ 0.1 of it);
- stored-rows COPY: the rows the ingest actually stored (decisions with their JSON, protected
  attributes, review tasks, staged audit events), read back and copied again into the real
  tables (with their indexes, constraints and triggers) under new ids, 1,000 decisions and
  their rows per transaction (goal: the ingest ≥ 0.5 of it).

Where the tasks run: with `--broker redis://…` (or BENCH_REDIS_URL) as in production, the web
processes only hand work to a Celery worker started beside them (`make worker`'s command, on a
queue of the bench's own), which competes for the same CPUs; its CPU time is printed apart,
for the run and for draining what was left. Without a broker, as before, every task (the
shadow scoring of the demo's candidate model) runs eagerly inside the requests.

    python -m bench.ingest [--batches 20] [--clients 4] [--workers 4] [--singles 300]
                           [--broker redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager

from bench.common import (
    ROOT,
    cpu_seconds,
    machine,
    postgres_version,
    report,
    setup_django,
    summary_ms,
    timer,
)

BATCH = 1000
URL = "/api/v1/decisions/bulk/"


def build_items(data, rows: list[int], start: int, count: int) -> list[dict]:
    from oversight.demo import decision_items

    items = decision_items(data, [rows[(start + i) % len(rows)] for i in range(count)])
    for i, item in enumerate(items):
        item["external_id"] = f"bench-{start + i:08d}"
    return items


# --- the server ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The bench's own queue on the broker (one bench at a time per broker database, as one bench
# database): emptied before its worker starts, so nothing a killed run left is counted.
QUEUE = "bench-ingest"
NODE = f"{QUEUE}@%h"


@contextmanager
def working(broker: str):
    """A Celery worker on the bench's queue, as `make worker` runs it (yields its pid), or
    nothing without a broker (tasks run in the requests)."""
    if not broker:
        yield None
        return
    import redis

    from config.celery import app

    redis.Redis.from_url(broker).delete(QUEUE)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel", "WARNING",
         "-n", NODE, "-Q", QUEUE],
        cwd=ROOT, env={**os.environ, "DATABASE_CONN_MAX_AGE": "60"},
    )  # fmt: skip
    try:
        node = NODE.replace("%h", socket.gethostname())
        deadline = time.monotonic() + 120
        while not app.control.ping(destination=[node], timeout=0.5):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError("the Celery worker did not start")
        yield worker.pid
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=120)


def drained(broker: str) -> None:
    """Wait until the worker has done every task sent so far (queue empty, nothing running)."""
    if not broker:
        return
    import redis

    from config.celery import app

    node = NODE.replace("%h", socket.gethostname())
    inspect = app.control.inspect(destination=[node], timeout=1.0)
    client = redis.Redis.from_url(broker)
    idle = 0
    while idle < 2:
        busy = (
            client.llen(QUEUE)
            or any((inspect.active() or {}).values())
            or any((inspect.reserved() or {}).values())
        )
        idle = 0 if busy else idle + 1
        time.sleep(0.05)


@contextmanager
def serving(workers: int, sealer: bool):
    """gunicorn on the bench database (with the sealer beside it): yields its port and pid."""
    port = _free_port()
    env = {**os.environ, "DATABASE_CONN_MAX_AGE": "60"}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--timeout", "300", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    sealing = (
        subprocess.Popen(
            [sys.executable, "manage.py", "audit_sealer"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        if sealer
        else None
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.2)
        yield port, server.pid
    finally:
        for process in (server, sealing):
            if process is not None:
                process.send_signal(signal.SIGTERM)
        for process in (server, sealing):
            if process is not None:
                process.wait(timeout=60)


def _post(port: int, token: str, body: bytes) -> tuple[int, bytes]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        conn.request(
            "POST",
            URL,
            body,
            {"Authorization": f"Token {token}", "Content-Type": "application/json"},
        )
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _client(port: int, token: str, bodies: list[bytes], start, out) -> None:
    start.wait()
    for body in bodies:
        status, content = _post(port, token, body)
        if status != 201:
            out.put(f"HTTP {status}: {content[:300]!r}")
            return
    out.put("ok")


def over_http(port: int, token: str, bodies: list[bytes], clients: int) -> float:
    """Seconds for `clients` processes to send all `bodies` (dealt out in turn), all started
    together."""
    context = multiprocessing.get_context("fork")
    start, out = context.Event(), context.Queue()
    shares = [bodies[n::clients] for n in range(clients)]
    processes = [
        context.Process(target=_client, args=(port, token, share, start, out)) for share in shares
    ]
    for process in processes:
        process.start()
    time.sleep(0.5)  # every client is waiting on the event
    began = time.perf_counter()
    start.set()
    results = [out.get() for _ in processes]
    seconds = time.perf_counter() - began
    for process in processes:
        process.join()
    failed = [r for r in results if r != "ok"]
    if failed:
        raise RuntimeError(failed[0])
    return seconds


# --- anchors ---------------------------------------------------------------------------------


def _dsn() -> str:
    from django.db import connection

    settings = connection.settings_dict
    return (
        f"host={settings['HOST']} port={settings['PORT']} "
        f"user={settings['USER']} dbname={settings['NAME']}"
    )


def copy_anchor(items_batches: list[list[dict]]) -> float:
    """Rows per second for COPY of the same rows (5 columns) into a scratch table."""
    import psycopg

    with psycopg.connect(_dsn()) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy_decisions")
        conn.execute(
            """CREATE TABLE bench_copy_decisions (
                id bigserial PRIMARY KEY, model text NOT NULL, external_id text NOT NULL,
                subject_ref text NOT NULL, features jsonb NOT NULL, groups jsonb NOT NULL,
                received_at timestamptz NOT NULL DEFAULT now(), UNIQUE (model, external_id))"""
        )
        conn.commit()
        with timer() as t:
            for items in items_batches:
                with (
                    conn.cursor() as cursor,
                    cursor.copy(
                        "COPY bench_copy_decisions"
                        " (model, external_id, subject_ref, features, groups) FROM STDIN"
                    ) as copy,
                ):
                    for item in items:
                        copy.write_row(
                            (item["model"], item["external_id"], item["subject_ref"],
                             json.dumps(item["features"]), json.dumps(item["groups"]))
                        )  # fmt: skip
                conn.commit()
        conn.execute("DROP TABLE bench_copy_decisions")
        conn.commit()
    return sum(len(b) for b in items_batches) / t["seconds"]


def _text_json(conn) -> None:
    """JSON columns read back as their text, ready to be copied again."""
    from psycopg.types.string import TextLoader

    conn.adapters.register_loader("json", TextLoader)
    conn.adapters.register_loader("jsonb", TextLoader)


def stored_rows_anchor(prefix: str) -> float:
    """Decisions per second for COPY of the rows the ingest stored for the decisions whose
    external_id starts with `prefix` (decisions, protected attributes, tasks, staged audit
    events), into the real tables under new ids, 1,000 decisions per transaction."""
    import psycopg

    from reviews.models import Decision, ReviewTask

    def columns(model) -> list[str]:
        return [f.column for f in model._meta.concrete_fields]

    d_cols, t_cols = columns(Decision), columns(ReviewTask)
    p_cols = ["decision_id", "name", "value"]
    # A staged event's columns (audit.log.stage_rows), as the ingest writes them.
    e_cols = ["recorded_at", "format", "actor", "action", "object_type", "object_id", "payload"]
    with psycopg.connect(_dsn()) as conn:
        _text_json(conn)
        decisions = conn.execute(
            f"SELECT {', '.join(d_cols)} FROM reviews_decision WHERE external_id LIKE %s "
            "ORDER BY id",
            [prefix + "%"],
        ).fetchall()
        ids = [row[0] for row in decisions]
        protected = conn.execute(
            f"SELECT {', '.join(p_cols)} FROM reviews_protectedattribute "
            "WHERE decision_id = ANY(%s)",
            [ids],
        ).fetchall()
        tasks = conn.execute(
            f"SELECT {', '.join(t_cols)} FROM reviews_reviewtask WHERE decision_id = ANY(%s)",
            [ids],
        ).fetchall()
        events = conn.execute(
            f"SELECT {', '.join(e_cols)}, object_id FROM audit_auditevent "
            "WHERE action = 'decision.ingested' AND object_id = ANY(%s)",
            [[str(i) for i in ids]],
        ).fetchall()
        # New ids, past every id in use; a new external_id each.
        shift = conn.execute(
            "SELECT greatest((SELECT max(id) FROM reviews_decision),"
            " (SELECT max(id) FROM reviews_reviewtask)) + 1000000"
        ).fetchone()[0]
        ext = d_cols.index("external_id")
        by_decision: dict[int, dict[str, list]] = {i: {"p": [], "t": [], "e": []} for i in ids}
        for row in protected:
            by_decision[row[0]]["p"].append((row[0] + shift, *row[1:]))
        for row in tasks:
            by_decision[row[1]]["t"].append((row[0] + shift, row[1] + shift, *row[2:]))
        for row in events:
            by_decision[int(row[-1])]["e"].append(row[:-1])
        batches = []
        for n in range(0, len(decisions), BATCH):
            chunk = decisions[n : n + BATCH]
            batches.append(
                (
                    [(row[0] + shift, *row[1:ext], "copy-" + row[ext], *row[ext + 1 :])
                     for row in chunk],
                    [p for row in chunk for p in by_decision[row[0]]["p"]],
                    [t for row in chunk for t in by_decision[row[0]]["t"]],
                    [e for row in chunk for e in by_decision[row[0]]["e"]],
                )
            )  # fmt: skip
        tables = [
            ("reviews_decision", d_cols),
            ("reviews_protectedattribute", p_cols),
            ("reviews_reviewtask", t_cols),
            ("audit_auditevent", e_cols),
        ]
        with timer() as t:
            for batch in batches:
                with conn.cursor() as cursor:
                    for (table, cols), rows in zip(tables, batch, strict=True):
                        with cursor.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                            for row in rows:
                                copy.write_row(row)
                conn.commit()
    return len(decisions) / t["seconds"]


def stored_decisions_anchor() -> float:
    """Today's context figure: COPY of the decision rows as stored (with their explanations
    and routing traces) into an unindexed copy of the table."""
    import psycopg

    from reviews.models import Decision

    cols = ", ".join(f.column for f in Decision._meta.concrete_fields)
    with psycopg.connect(_dsn()) as conn:
        _text_json(conn)
        rows = conn.execute(
            f"SELECT {cols} FROM reviews_decision ORDER BY id DESC LIMIT 5000"
        ).fetchall()
        conn.execute("CREATE TEMP TABLE bench_stored (LIKE reviews_decision) ON COMMIT DROP")
        with (
            timer() as t,
            conn.cursor() as cursor,
            cursor.copy(f"COPY bench_stored ({cols}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        conn.commit()
    return len(rows) / t["seconds"]


# --- the run ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=20, help="bulk requests of 1,000")
    parser.add_argument("--clients", type=int, default=4, help="client processes over HTTP")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--singles", type=int, default=300, help="single POSTs for latency")
    parser.add_argument("--no-sealer", action="store_true", help="no sealer beside the server")
    parser.add_argument(
        "--broker",
        default=os.environ.get("BENCH_REDIS_URL", ""),
        help="a Redis URL: tasks go to a Celery worker beside the server, as in production "
        "(default: BENCH_REDIS_URL; without one, tasks run inside the requests)",
    )
    args = parser.parse_args()
    if args.broker:
        os.environ["CELERY_DEFAULT_QUEUE"] = QUEUE
    setup_django(broker=args.broker)

    from django.db import connections
    from django.test import Client

    from accounts.services import service_token_create
    from audit.models import AuditEvent
    from oversight import demo

    if args.broker:
        from config.celery import app

        # The demo is loaded as without a broker (its retraining and deliveries done here and
        # now), before any worker runs; only the measured requests hand their tasks over.
        app.conf.task_always_eager = True
        demo.load()
        app.conf.task_always_eager = False
    else:
        demo.load()
    # A token of the demo's own model service, which is granted the demo model.
    _, token = service_token_create(name=demo.SERVICE_NAME, actor="bench")
    data = demo.load_loanapp()
    rows = list(range(len(data.labels)))
    http_batches = [build_items(data, rows, b * BATCH, BATCH) for b in range(args.batches)]
    http_bodies = [json.dumps({"items": items}).encode() for items in http_batches]
    local_batches = [
        build_items(data, rows, 30_000_000 + b * BATCH, BATCH) for b in range(args.batches)
    ]
    connections.close_all()  # nothing shared with the forked clients

    # The worker (with a broker) runs beside everything the requests below hand over.
    with working(args.broker) as worker:
        with serving(args.workers, sealer=not args.no_sealer) as (port, web):
            # Warm up every worker: load the estimator, compile the linear view, fill caches.
            warm = [
                json.dumps({"items": build_items(data, rows, 10_000_000 + 50 * n, 50)}).encode()
                for n in range(2 * args.workers)
            ]
            over_http(port, token, warm, args.workers)
            drained(args.broker)
            cpu_before = cpu_seconds(worker) if worker else 0.0
            web_before = cpu_seconds(web)
            seconds = over_http(port, token, http_bodies, args.clients)
            web_cpu = cpu_seconds(web) - web_before
            cpu_run = cpu_seconds(worker) - cpu_before if worker else 0.0
            staged = AuditEvent.objects.filter(seq__isnull=True).count()
            with timer() as sealed:
                while not args.no_sealer and AuditEvent.objects.filter(seq__isnull=True).exists():
                    time.sleep(0.05)
            with timer() as worked:
                drained(args.broker)
            cpu_all = cpu_seconds(worker) - cpu_before if worker else 0.0
            connections.close_all()
        http_rate = args.batches * BATCH / seconds

        # Today's figure: the same work in-process, one request after another.
        client = Client(HTTP_AUTHORIZATION=f"Token {token}", HTTP_HOST="127.0.0.1")
        warm_local = build_items(data, rows, 11_000_000, 50)
        assert (
            client.post(URL, {"items": warm_local}, content_type="application/json").status_code
            == 201
        )
        local_bodies = [json.dumps({"items": items}) for items in local_batches]
        with timer() as t:
            for body in local_bodies:
                response = client.post(URL, body, content_type="application/json")
                assert response.status_code == 201, response.content[:500]
        routed = sum(r["routed"] for r in response.json()["items"])
        local_rate = args.batches * BATCH / t["seconds"]

        singles = build_items(data, rows, 20_000_000, args.singles)
        times = []
        for item in singles:
            start = time.perf_counter()
            response = client.post("/api/v1/decisions/", item, content_type="application/json")
            times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 201
        drained(args.broker)  # what the in-process requests handed over, before the anchors

    plain = copy_anchor(http_batches)
    context = stored_decisions_anchor()
    stored = stored_rows_anchor("bench-0")

    print(f"bench/ingest.py — {machine()}, {postgres_version()}")
    print(
        f"  {args.batches} bulk requests of {BATCH} decisions over HTTP from {args.clients} "
        f"client processes at once; gunicorn, {args.workers} sync workers, "
        f"DATABASE_CONN_MAX_AGE=60, sealer {'off' if args.no_sealer else 'on'} "
        f"({routed} of the last in-process {BATCH} routed)"
    )
    print(
        f"  CPU of the web processes (gunicorn) during the HTTP run: {web_cpu:.2f} s, "
        f"{1e6 * web_cpu / (args.batches * BATCH):.0f} µs per decision"
    )
    if args.broker:
        print(
            "  tasks: handed to a Celery worker beside the server (as in production), on the "
            "same CPUs; the shadow scoring of the demo's candidate model runs there"
        )
        print(
            f"  worker CPU: {cpu_run:.2f} s during the HTTP run, {cpu_all:.2f} s with what was "
            f"left ({worked['seconds']:.1f} s to drain after the last response), "
            f"{1e6 * cpu_all / (args.batches * BATCH):.0f} µs per decision"
        )
    else:
        print(
            "  tasks: no broker, so every task (the shadow scoring of the demo's candidate "
            "model) runs eagerly inside the requests; pass --broker for production's shape"
        )
    report(
        "bulk ingest over HTTP", http_rate, "decisions/s",
        "COPY of the stored rows (decisions, protected attributes, tasks, staged events) "
        "into the real tables", stored, goal=0.5,
    )  # fmt: skip
    print(f"  anchor, plain 5-column COPY of the same decisions: {plain:,.0f} decisions/s")
    print(f"  ratio to plain COPY: {http_rate / plain:.3f}  (goal ≥ 0.1)")
    print(
        f"  today's figure, in-process, one request after another: {local_rate:,.0f} "
        f"decisions/s; {local_rate / plain:.3f} of plain COPY, {local_rate / stored:.3f} of "
        "the stored-rows COPY"
    )
    print(
        f"  context: COPY of the decision rows alone as stored, into an unindexed table: "
        f"{context:,.0f} rows/s"
    )
    if not args.no_sealer:
        print(
            f"  sealer: {staged:,} events still staged when the last response came, all sealed "
            f"{sealed['seconds']:.1f} s later"
        )
    print(f"  single POST /api/v1/decisions/ (in-process): {summary_ms(times)}")


if __name__ == "__main__":
    main()
