"""Ingestion throughput: POST /api/v1/decisions/bulk/ against a raw COPY of the same rows.

The figure includes everything a real request does in-process: token authentication, JSON
parsing, validation against the schema, scoring with the champion, explanations and
counterfactuals, routing, storing decisions, protected attributes and review tasks, and one
audit event per decision. Requests go through Django's WSGI handler (the test client), not a
socket. The anchor COPYs the same decision rows (the same columns, JSON as jsonb) into a
scratch table, 1,000 rows per COPY and one commit each, in the same run.

    python -m bench.ingest [--batches 20] [--singles 300]
"""

from __future__ import annotations

import argparse
import json

from bench.common import machine, postgres_version, report, setup_django, summary_ms, timer

BATCH = 1000


def build_items(data, rows: list[int], start: int, count: int) -> list[dict]:
    from oversight.demo import decision_items

    items = decision_items(data, [rows[(start + i) % len(rows)] for i in range(count)])
    for i, item in enumerate(items):
        item["external_id"] = f"bench-{start + i:08d}"
    return items


def copy_anchor(items_batches: list[list[dict]]) -> float:
    """Rows per second for COPY of the same rows into a scratch table."""
    import psycopg
    from django.db import connection

    settings = connection.settings_dict
    dsn = (
        f"host={settings['HOST']} port={settings['PORT']} "
        f"user={settings['USER']} dbname={settings['NAME']}"
    )
    with psycopg.connect(dsn) as conn:
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


def stored_rows_anchor() -> float:
    """Rows per second for COPY of the decision rows as stored (with their explanations and
    routing traces, JSON serialized with orjson), into an unindexed copy of the table."""
    import orjson
    from django.db import connection, transaction

    from reviews.models import Decision

    fields = Decision._meta.concrete_fields
    rows = [
        [orjson.dumps(getattr(d, f.attname)).decode() if f.get_internal_type() == "JSONField"
         else f.get_db_prep_save(getattr(d, f.attname), connection) for f in fields]
        for d in Decision.objects.order_by("-id")[:5000]
    ]  # fmt: skip
    columns = ", ".join(f.column for f in fields)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE bench_stored (LIKE reviews_decision) ON COMMIT DROP")
        with timer() as t, cursor.cursor.copy(f"COPY bench_stored ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    return len(rows) / t["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=20, help="bulk requests of 1,000")
    parser.add_argument("--singles", type=int, default=300, help="single POSTs for latency")
    args = parser.parse_args()
    setup_django()

    from django.test import Client

    from accounts.services import service_token_create
    from oversight import demo

    demo.load()
    # A token of the demo's own model service, which is granted the demo model.
    _, token = service_token_create(name=demo.SERVICE_NAME, actor="bench")
    client = Client(HTTP_AUTHORIZATION=f"Token {token}", HTTP_HOST="127.0.0.1")
    data = demo.load_loanapp()
    rows = list(range(len(data.labels)))
    batches = [build_items(data, rows, b * BATCH, BATCH) for b in range(args.batches)]
    bodies = [json.dumps({"items": items}) for items in batches]

    # Warm up: load the estimator, compile the linear view, fill caches.
    warm = build_items(data, rows, 10_000_000, 50)
    assert (
        client.post(
            "/api/v1/decisions/bulk/", {"items": warm}, content_type="application/json"
        ).status_code
        == 201
    )

    with timer() as t:
        for body in bodies:
            response = client.post("/api/v1/decisions/bulk/", body, content_type="application/json")
            assert response.status_code == 201, response.content[:500]
    routed = sum(r["routed"] for r in response.json()["items"])
    ingest_rate = args.batches * BATCH / t["seconds"]
    anchor = copy_anchor(batches)

    singles = build_items(data, rows, 20_000_000, args.singles)
    times = []
    import time

    for item in singles:
        start = time.perf_counter()
        response = client.post("/api/v1/decisions/", item, content_type="application/json")
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 201

    print(f"bench/ingest.py — {machine()}, {postgres_version()}")
    print(
        f"  {args.batches} bulk requests of {BATCH} decisions ({routed} of the last {BATCH} routed)"
    )
    report(
        "bulk ingest", ingest_rate, "decisions/s", "raw COPY of the same rows", anchor, goal=0.25
    )
    stored = stored_rows_anchor()
    print(
        f"  context: COPY of the rows as stored (with explanations and routing traces): "
        f"{stored:,.0f} rows/s; ingest is {ingest_rate / stored:.3f} of that"
    )
    print(f"  single POST /api/v1/decisions/: {summary_ms(times)}")


if __name__ == "__main__":
    main()
