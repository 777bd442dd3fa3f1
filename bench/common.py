"""Shared by the benchmarks: a fresh PostgreSQL database, Django set up on it, timing, output.

Every figure is printed beside an anchor measured in the same run on the same machine, and
their ratio. Nothing here is a pass/fail test.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BENCH_DB = os.environ.get("BENCH_DB", "oversight_bench")


def fresh_database() -> str:
    """Drop and create the bench database; returns its URL."""
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + BENCH_DB


def setup_django(*, fresh: bool = True, broker: str = "") -> str:
    """Django on the bench database. Tasks run in-process (no broker) unless `broker` is a
    Redis URL: then they go to a Celery worker, as in production, which the caller starts."""
    url = fresh_database() if fresh else ADMIN_URL.rsplit("/", 1)[0] + "/" + BENCH_DB
    os.environ["DATABASE_URL"] = url
    if broker:
        os.environ["REDIS_URL"] = broker
    else:
        os.environ.pop("REDIS_URL", None)  # tasks in-process: the bench measures the web path
    # Production settings: with DEBUG on, Django would log (and format) every query.
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-" + "x" * 50)
    os.environ["DJANGO_ALLOWED_HOSTS"] = "127.0.0.1,localhost,testserver"
    os.environ["DJANGO_SECURE_SSL_REDIRECT"] = "0"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    if fresh:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)  # production static storage
    return url


def machine() -> str:
    cpus = os.cpu_count()
    memory = ""
    try:
        with open("/proc/meminfo") as f:
            memory = f"{int(f.readline().split()[1]) / 1024 / 1024:.0f} GiB RAM"
    except OSError:
        pass
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if "model name" in line), "")
    except OSError:
        pass
    return (
        f"{platform.machine()}, {cpus} CPUs ({model}), {memory}, Python {platform.python_version()}"
    )


def postgres_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return f"PostgreSQL {cursor.fetchone()[0]}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and every live descendant (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After "(comm)": state, ppid, ..., utime and stime are fields 14 and 15 of stat.
        parents[int(entry)] = int(fields[1])
        used[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        total += used.get(current, 0.0)
        stack.extend(child for child, parent in parents.items() if parent == current)
    return total


@contextmanager
def timer():
    box = {}
    start = time.perf_counter()
    yield box
    box["seconds"] = time.perf_counter() - start


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def latencies(fn: Callable[[int], object], n: int) -> list[float]:
    out = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - start) * 1000)
    return out


def summary_ms(values: list[float]) -> str:
    return (
        f"p50 {percentile(values, 50):.1f} ms, p95 {percentile(values, 95):.1f} ms, "
        f"p99 {percentile(values, 99):.1f} ms, mean {statistics.fmean(values):.1f} ms "
        f"(n={len(values)})"
    )


def report(
    title: str, figure: float, unit: str, anchor_name: str, anchor: float, goal: float | None = None
) -> None:
    ratio = figure / anchor if anchor else float("nan")
    goal_text = f"  (goal ≥ {goal})" if goal is not None else ""
    print(f"  {title}: {figure:,.0f} {unit}")
    print(f"  anchor, {anchor_name}: {anchor:,.0f} {unit}")
    print(f"  ratio: {ratio:.3f}{goal_text}")
