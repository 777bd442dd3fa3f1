"""The outbox: written in the transaction, delivered after commit, re-sent by the sweep,
dead after the last attempt; never twice at once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from audit.models import Alert, AuditEvent
from core.errors import ApplicationError
from outbox import email, handlers, services, tasks
from outbox.models import Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def delivered():
    """A kind of message whose handler records what it got, and fails while told to."""
    seen: list[str] = []
    failing = {"on": False}

    def handler(message):
        if failing["on"]:
            raise ConnectionError("the receiver is down")
        seen.append(message.key)

    handlers.register("test", handler)
    yield seen, failing


@pytest.fixture(autouse=True)
def _locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def enqueue(key: str = "k1", kind: str = "test", **payload) -> Message:
    with transaction.atomic():
        return services.message_enqueue(kind=kind, key=key, payload=payload, scope="model:1")


@pytest.mark.django_db(transaction=True)
def test_it_refuses_a_message_outside_a_transaction(delivered):
    with pytest.raises(RuntimeError, match="transaction of their change"):
        services.message_enqueue(kind="test", key="k", payload={})


def test_it_refuses_a_kind_nobody_delivers():
    with pytest.raises(LookupError, match="no handler"):
        enqueue(kind="carrier-pigeon")


def test_it_delivers_after_commit_and_only_then(delivered, django_capture_on_commit_callbacks):
    seen, _ = delivered
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        message = enqueue()
    assert seen == [] and len(callbacks) == 1
    callbacks[0]()
    message.refresh_from_db()
    assert (message.status, message.attempts, seen) == ("delivered", 1, ["k1"])


def test_the_same_key_is_one_message(delivered):
    enqueue("same", n=1)
    enqueue("same", n=2)
    assert Message.objects.filter(key="same").count() == 1
    assert Message.objects.get(key="same").payload == {"n": 1}


def test_the_same_key_again_returns_the_first_message_and_sends_nothing_more(
    delivered, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = enqueue("again", n=1)
    with django_capture_on_commit_callbacks(execute=False) as again:
        second = enqueue("again", n=2)
    assert second.pk == first.pk and second.payload == {"n": 1}
    assert (len(callbacks), len(again)) == (1, 0)  # one delivery hand-off, for the first
    stored = Message.objects.get(pk=first.pk)
    stored_as = (stored.kind, stored.scope, stored.status, stored.attempts)
    assert stored_as == ("test", "model:1", "pending", 0)


def test_running_a_delivery_twice_delivers_once(delivered):
    seen, _ = delivered
    message = enqueue()
    assert services.message_deliver(message_id=message.pk) == "delivered"
    assert services.message_deliver(message_id=message.pk) == "skipped"
    assert seen == ["k1"]


def test_a_message_another_worker_holds_is_left_to_it(delivered):
    seen, _ = delivered
    message = enqueue()
    Message.objects.filter(pk=message.pk).update(leased_until=timezone.now() + timedelta(minutes=5))
    assert services.message_deliver(message_id=message.pk) == "skipped"
    assert services.messages_sweep() == 0
    # The worker died: once its lease ran out, the sweep hands the message on.
    Message.objects.filter(pk=message.pk).update(leased_until=timezone.now() - timedelta(seconds=1))
    assert services.messages_sweep() == 1
    assert seen == ["k1"]


def test_a_failure_waits_with_exponential_backoff_then_the_message_dies_with_an_alert(
    delivered, settings
):
    seen, failing = delivered
    settings.OUTBOX_MAX_ATTEMPTS, settings.OUTBOX_BACKOFF_SECONDS = 3, 30
    failing["on"] = True
    message = enqueue()
    before = timezone.now()
    assert services.message_deliver(message_id=message.pk) == "retry"
    message.refresh_from_db()
    assert message.attempts == 1 and "the receiver is down" in message.last_error
    assert before + timedelta(seconds=29) < message.next_attempt_at
    assert message.next_attempt_at < timezone.now() + timedelta(seconds=31)
    assert services.messages_sweep() == 0  # not due yet
    assert services.message_deliver(message_id=message.pk, due_only=True) == "skipped"

    assert services.message_deliver(message_id=message.pk) == "retry"
    message.refresh_from_db()
    assert message.next_attempt_at > timezone.now() + timedelta(seconds=59)  # doubled
    assert services.message_deliver(message_id=message.pk) == "dead"
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("dead", 3)
    assert Alert.objects.get(kind="outbox_dead").message.startswith("A test message (model:1)")
    dead = AuditEvent.objects.get(action="outbox.dead")
    assert (dead.object_type, dead.object_id) == ("message", str(message.pk))
    assert seen == []


def test_backoff_doubles_and_stops_at_an_hour(settings):
    settings.OUTBOX_BACKOFF_SECONDS = 30
    assert [services.backoff(n).total_seconds() for n in (1, 2, 3, 8, 20)] == [
        30, 60, 120, 3600, 3600
    ]  # fmt: skip


def test_a_person_resends_a_dead_message_and_that_is_audited(delivered, erin):
    seen, _ = delivered
    message = enqueue()
    Message.objects.filter(pk=message.pk).update(status="dead", attempts=8)
    services.message_resend(message_id=message.pk, actor=erin)
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("pending", 0)
    assert AuditEvent.objects.get(action="outbox.resent").actor == "user:erin"
    with pytest.raises(ApplicationError, match="only a dead one"):
        services.message_resend(message_id=message.pk, actor=erin)
    assert services.messages_sweep() == 1
    assert seen == ["k1"]


def test_with_the_broker_down_the_commit_stands_and_the_sweep_delivers_later(
    delivered, monkeypatch, django_capture_on_commit_callbacks
):
    seen, _ = delivered

    def broker_down(*args):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    with monkeypatch.context() as patched:
        patched.setattr(tasks.deliver, "delay", broker_down)
        with django_capture_on_commit_callbacks(execute=True):
            message = enqueue()
    message.refresh_from_db()
    assert message.status == "pending" and seen == []
    assert services.messages_sweep() == 1
    assert seen == ["k1"]


def test_an_email_goes_out_with_its_message_id_once(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        message = enqueue(
            "appeal-7-received",
            kind=email.KIND,
            **email.payload(to=["person@example.org"], subject="Received", body="We have it."),
        )
    services.message_deliver(message_id=message.pk)
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert (sent.to, sent.subject) == (["person@example.org"], "Received")
    assert sent.extra_headers["Message-ID"].startswith(f"<appeal-7-received.{message.pk}@")
