"""E-mails to the person who appealed, end to end: the outbox row written with the appeal,
a real `celery worker` process over Redis delivering it to a real SMTP server on localhost
(aiosmtpd); with the broker unreachable while the appeal is filed, the sweep delivers the
message once the broker is back, exactly once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from email import message_from_bytes
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from django.conf import settings as django_settings
from django.db import connection

from appeals import services
from appeals.models import Appeal
from config.celery import app as celery_app
from outbox.models import Message
from outbox.services import messages_sweep
from tests.appeals.conftest import DENY, GROUNDS, claim_appeal, ingest
from tests.fixtures import make_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


class Inbox:
    """What the SMTP server received, by Message-ID."""

    def __init__(self) -> None:
        self.messages: list = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"

    def subjects(self) -> list[str]:
        with self.lock:
            return [m["Subject"] for m in self.messages]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def inbox():
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, controller.port
    controller.stop()


@pytest.fixture
def worker(inbox):
    """A worker on a queue of its own, pointed at the test database and the SMTP server."""
    _handler, port = inbox
    queue = f"oversight-test-{uuid.uuid4().hex[:8]}"
    db = django_settings.DATABASES["default"]
    name = connection.settings_dict["NAME"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{name}",
        "REDIS_URL": os.environ["REDIS_URL"],
        "EMAIL_URL": f"smtp://127.0.0.1:{port}",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
         "--concurrency=1", "-Q", queue, "--loglevel=INFO", "--without-heartbeat",
         "--without-mingle", "--without-gossip"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    celery_app.conf.task_always_eager = False
    routes = celery_app.conf.task_routes
    use_routes({"*": {"queue": queue}})
    try:
        yield process
    finally:
        celery_app.conf.task_always_eager = True
        use_routes(routes)
        if process.poll() is None:
            process.terminate()
        try:
            output, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        print((output or "")[-4000:])


def use_routes(routes) -> None:
    """Route tasks so; Celery builds its router once, so it is made again (and again after
    the test, for the next test's worker on a queue of its own)."""
    celery_app.conf.task_routes = routes
    celery_app.amqp._rtable = None  # read from the settings again at the next send
    celery_app.amqp.__dict__.pop("router", None)


def point_broker_at(url: str) -> None:
    """Where the web side sends tasks; its connection pools are made again for the new URL."""
    celery_app.conf.broker_url = url
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def wait_for(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def received(handler: Inbox, subject_start: str) -> int:
    return sum(s.startswith(subject_start) for s in handler.subjects())


def test_the_person_gets_both_emails_through_a_real_worker(tiny_model, service, inbox, worker):
    handler, _port = inbox
    carol = make_user("carol", "senior_reviewer")
    decision = ingest(service, 1, **DENY)
    appeal = services.appeal_file(
        decision=decision,
        grounds=GROUNDS,
        contact_email="person@example.org",
        via="portal",
        actor="person:test",
    )
    assert wait_for(lambda: received(handler, "We received your appeal") == 1)
    claim_appeal(carol)
    services.appeal_resolve(
        appeal_id=appeal.pk,
        senior=carol,
        result="overturned",
        outcome="approve",
        reasons="Your income was higher than the figure used.",
    )
    assert wait_for(lambda: received(handler, "The decision on your appeal") == 1)
    decided = next(m for m in handler.messages if m["Subject"].startswith("The decision"))
    assert decided["To"] == "person@example.org"
    assert "Your income was higher" in decided.get_payload(decode=True).decode()
    assert set(Message.objects.values_list("status", flat=True)) == {"delivered"}


def test_with_the_broker_down_the_sweep_delivers_once_it_is_back(
    tiny_model, service, inbox, worker
):
    handler, _port = inbox
    decision = ingest(service, 2, **DENY)
    broker = celery_app.conf.broker_url
    point_broker_at(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    try:
        appeal = services.appeal_file(
            decision=decision,
            grounds=GROUNDS,
            contact_email="person@example.org",
            via="portal",
            actor="person:test",
        )  # the hand-off after commit fails, and is logged; the appeal is filed
        assert messages_sweep() == 0  # the sweep cannot reach the broker either
    finally:
        point_broker_at(broker)
    assert Appeal.objects.filter(pk=appeal.pk, status="submitted").exists()
    message = Message.objects.get(key=f"appeal:{appeal.pk}:received")
    assert (message.status, message.attempts) == ("pending", 0)
    time.sleep(2)
    assert received(handler, "We received your appeal") == 0

    # The broker is back: the beat's sweep runs (twice, as two beats would), and the
    # message is delivered once.
    assert messages_sweep() == 1
    messages_sweep()
    assert wait_for(lambda: Message.objects.get(pk=message.pk).status == "delivered")
    time.sleep(2)  # a second delivery, were there one, would have arrived by now
    assert received(handler, "We received your appeal") == 1
    (sent,) = [m for m in handler.messages if m["Subject"].startswith("We received")]
    assert sent["Message-ID"].startswith(f"<appeal{appeal.pk}received.{message.pk}@")
