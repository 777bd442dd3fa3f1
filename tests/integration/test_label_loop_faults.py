"""The label loop under faults, with real processes: PostgreSQL, Redis, a `celery worker`
process and a webhook receiver (a real HTTP server on localhost).

1. The broker is unreachable (from the web process) while reviews are answered: no label is
   lost, and once it is back the sweeps deliver each one, once.
2. The worker is killed with SIGKILL in the middle of a webhook delivery (the receiver holds
   the request): after the lease expires the sweep hands the message to a new worker, and
   everything arrives; the receiver, skipping delivery ids it has seen, processes each once.

Labels written and labels delivered are counted in both, and must be equal.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection

from config.celery import app as celery_app
from learning import tasks as learning_tasks
from learning.models import LabelRecord, TrainingExample
from learning.services import webhook_set
from models_registry import services as registry
from outbox import tasks as outbox_tasks
from outbox.models import Message
from reviews.services import decisions_ingest
from tests.fixtures import item, register_tiny
from tests.integration.workers import route_to
from tests.learning.common import answer
from tests.learning.receiver import Receiver

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
SECRET = "integration-webhook-secret"


class BrokerProxy:
    """A TCP proxy in front of Redis for this process only: cut() makes the broker
    unreachable (connections refused, open ones dropped), restore() brings it back."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = self._free_port()
        self.sockets: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.restore()

    @staticmethod
    def _free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def restore(self) -> None:
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(64)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def cut(self) -> None:
        self.listener.close()
        for sock in self.sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            except OSError:
                pass
        self.sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 1.0)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (b if sock is a else a).sendall(data)
        except (OSError, ValueError):
            return


def _use_broker(url: str) -> None:
    """Point this process's Celery producer at `url` (fresh connection pools)."""
    celery_app.conf.broker_url = url
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def loop(tmp_path):
    """A queue of its own, a broker proxy for this process, worker processes on demand."""
    queue = f"oversight-test-{uuid.uuid4().hex[:8]}"
    redis = urlsplit(os.environ["REDIS_URL"])
    proxy = BrokerProxy((redis.hostname or "127.0.0.1", redis.port or 6379))
    direct = os.environ["REDIS_URL"]
    proxied = urlunsplit(redis._replace(netloc=f"127.0.0.1:{proxy.port}"))
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/"
        f"{connection.settings_dict['NAME']}",
        "REDIS_URL": direct,
        "CELERY_DEFAULT_QUEUE": queue,
        "OUTBOX_LEASE_SECONDS": "3",
        "OUTBOX_BACKOFF_SECONDS": "1",
        "LEARNING_WEBHOOK_BATCH": "4",  # several batches, several delivery ids
    }
    workers: list[subprocess.Popen] = []
    logs: list[Path] = []

    def start_worker() -> subprocess.Popen:
        log = tmp_path / f"worker-{len(workers)}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
             "--concurrency=1", "-Q", queue, "--loglevel=INFO", "--without-heartbeat",
             "--without-mingle", "--without-gossip"],
            cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        workers.append(process)
        logs.append(log)
        return process

    routes = celery_app.conf.task_routes
    celery_app.conf.task_always_eager = False
    route_to({"*": {"queue": queue}})
    _use_broker(proxied)
    try:
        yield {"proxy": proxy, "start_worker": start_worker, "logs": logs}
    finally:
        for process in workers:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
        proxy.cut()
        celery_app.conf.task_always_eager = True
        route_to(routes)
        _use_broker(direct)
        for log in logs:
            print(log.name, log.read_text()[-3000:])


@pytest.fixture
def receiver():
    receiver = Receiver(secret=SECRET).start()
    receiver.server.block_on_close = False  # a held request must not hold up the teardown
    yield receiver
    receiver.stop()


@pytest.fixture
def setup(erin, alice, service, tiny_artifact, receiver):
    """The tiny model with a champion, every decision routed to a person, the webhook set."""
    model = register_tiny(erin, [service.user], review_all=True)
    version = registry.version_upload(model=model, artifact=tiny_artifact, actor=erin)
    registry.version_promote(version=version, actor=erin)
    webhook_set(model=model, url=receiver.url, secret=SECRET, actor=erin)
    return model


def _wait_for(predicate, timeout: float = 90.0, every: float = 0.3) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def _beat() -> None:
    """What celery beat does every minute, sent through the broker to the worker."""
    outbox_tasks.sweep.delay()
    learning_tasks.sweep.delay()


def _all_delivered(receiver: Receiver, written: int):
    def done() -> bool:
        undelivered = Message.objects.exclude(status="delivered").exists()
        batched = sum(len(a.labels) for a in receiver.accepted())
        return not undelivered and TrainingExample.objects.count() == written and batched == written

    return done


def _beat_until(predicate, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        _beat()
        _wait_for(predicate, timeout=2.0)
    return predicate()


def _counts(receiver: Receiver) -> dict:
    labels = list(LabelRecord.objects.values_list("pk", flat=True))
    accepted = receiver.accepted()
    in_batches = Counter(label for arrival in accepted for label in arrival.labels)
    return {
        "labels_written": len(labels),
        "training_store_rows": TrainingExample.objects.count(),
        "distinct_labels_in_store": TrainingExample.objects.values("record").distinct().count(),
        "webhook_deliveries": Message.objects.filter(kind="webhook").count(),
        "receiver_arrivals": len(receiver.arrivals),
        "receiver_accepted": len(accepted),
        "labels_via_webhook": sum(in_batches.values()),
        "labels_twice_via_webhook": sum(1 for n in in_batches.values() if n > 1),
        "unverified": sum(not a.verified for a in receiver.arrivals),
        "ids_seen_twice": sorted(
            i for i, n in Counter(a.delivery_id for a in receiver.arrivals).items() if n > 1
        ),
    }


def _answer_all(alice, model, service, n: int) -> None:
    decisions_ingest(items=[item(i) for i in range(1, n + 1)], actor=service.user)
    for i in range(n):
        answer(alice, outcome="deny" if i % 3 == 0 else None)


def test_with_the_broker_unreachable_no_label_is_lost_and_each_arrives_once(
    setup, loop, receiver, alice, service
):
    loop["start_worker"]()
    loop["proxy"].cut()  # the broker is gone for this (web) process
    _answer_all(alice, setup, service, 20)
    assert LabelRecord.objects.count() == 20
    assert Message.objects.filter(kind="label", status="pending").count() == 20
    assert TrainingExample.objects.count() == 0 and receiver.arrivals == []

    loop["proxy"].restore()
    assert _beat_until(_all_delivered(receiver, 20)), _counts(receiver)
    counts = _counts(receiver)
    print("broker-down counts:", counts)
    assert counts["labels_written"] == counts["training_store_rows"] == 20
    assert counts["distinct_labels_in_store"] == 20
    assert counts["labels_via_webhook"] == 20 and counts["labels_twice_via_webhook"] == 0
    assert counts["ids_seen_twice"] == [] and counts["unverified"] == 0
    assert counts["receiver_arrivals"] == counts["webhook_deliveries"]


def test_with_the_worker_killed_mid_delivery_no_label_is_lost_and_each_arrives_once(
    setup, loop, receiver, alice, service
):
    receiver.hold_next, receiver.hold_seconds = 1, 30.0
    worker = loop["start_worker"]()
    _answer_all(alice, setup, service, 10)
    assert receiver.holding.wait(timeout=60), "the webhook delivery never reached the receiver"
    held = receiver.arrivals[0].delivery_id
    os.kill(worker.pid, signal.SIGKILL)  # in the middle of the webhook delivery
    worker.wait(timeout=10)
    message = Message.objects.get(key=held)
    assert message.status == "pending" and message.leased_until is not None

    loop["start_worker"]()
    time.sleep(3.5)  # OUTBOX_LEASE_SECONDS of the dead worker's claim
    assert _beat_until(_all_delivered(receiver, 10)), _counts(receiver)
    counts = _counts(receiver)
    print("worker-killed counts:", counts)
    assert counts["labels_written"] == counts["training_store_rows"] == 10
    assert counts["distinct_labels_in_store"] == 10
    assert counts["labels_via_webhook"] == 10 and counts["labels_twice_via_webhook"] == 0
    # The delivery in flight when the worker died reached the receiver before the kill, and
    # again after: the same delivery id, which the receiver recognises. Nothing else repeats.
    assert counts["ids_seen_twice"] in ([], [held])
    assert counts["receiver_accepted"] == counts["webhook_deliveries"]
    assert counts["unverified"] == 0
