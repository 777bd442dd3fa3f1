"""Delivery of labels: the training store through the outbox (sweep, backoff, dead letters,
re-send), and the owner's webhook: signed batches a real receiver verifies."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import pytest
from django.test import Client
from kombu.exceptions import OperationalError

from audit.models import Alert, AuditEvent
from learning import secrets
from learning.models import LabelRecord, TrainingExample, Webhook
from learning.services import webhook_batches_make, webhook_remove, webhook_set
from outbox import services as outbox
from outbox import tasks as outbox_tasks
from outbox.models import Message
from tests.fixtures import api
from tests.learning.common import events, ingest, settle
from tests.learning.receiver import Receiver

pytestmark = pytest.mark.django_db
SECRET = "s3cret-s3cret-s3cret"


@pytest.fixture
def receiver():
    receiver = Receiver(secret=SECRET).start()
    yield receiver
    receiver.stop()


def labelled(model, service, erin, alice, n: int = 3, start: int = 1) -> list:
    decisions = ingest(model, service, erin, n=n, start=start)
    for decision in decisions:
        settle(decision, "deny", alice)
    return decisions


def test_with_the_broker_down_labels_wait_and_the_sweep_delivers_each_once(
    tiny_model, service, erin, alice, monkeypatch, django_capture_on_commit_callbacks
):
    def broker_down(*args):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    with monkeypatch.context() as patched:
        patched.setattr(outbox_tasks.deliver, "delay", broker_down)
        with django_capture_on_commit_callbacks(execute=True):
            labelled(tiny_model, service, erin, alice)
    assert Message.objects.filter(kind="label", status="pending").count() == 3
    assert not TrainingExample.objects.exists()
    assert outbox.messages_sweep() == 3  # eager: delivered at once
    assert outbox.messages_sweep() == 0
    assert TrainingExample.objects.count() == LabelRecord.objects.count() == 3


def test_a_webhook_batch_is_signed_and_the_receiver_verifies_it(
    tiny_model, service, erin, alice, receiver
):
    webhook_set(model=tiny_model, url=receiver.url, secret=SECRET, actor=erin)
    labelled(tiny_model, service, erin, alice, n=3)
    assert LabelRecord.objects.filter(webhook_pending=True).count() == 3
    assert webhook_batches_make(model_id=tiny_model.pk) == 1
    message = Message.objects.get(kind="webhook")
    assert outbox.message_deliver(message_id=message.pk) == "delivered"
    (arrival,) = receiver.arrivals
    assert arrival.verified and arrival.delivery_id == message.key
    assert arrival.labels == sorted(LabelRecord.objects.values_list("pk", flat=True))
    body = message.payload["body"]
    assert body["model"] == "tiny" and body["labels"][0]["label"] == "deny"
    assert set(body["labels"][0]) >= {"id", "decision", "external_id", "features", "source"}
    assert not LabelRecord.objects.filter(webhook_pending=True).exists()
    assert webhook_batches_make(model_id=tiny_model.pk) == 0
    (batched,) = events("webhook.batched")
    assert batched["delivery_id"] == message.key and len(batched["labels"]) == 3


def test_a_signature_made_with_another_secret_or_body_does_not_verify():
    good = secrets.signature(SECRET, "1700000000", b'{"a":1}')
    assert good.startswith("sha256=") and len(good) == 7 + 64
    assert secrets.verify(SECRET, "1700000000", b'{"a":1}', good)
    assert not secrets.verify("another-secret-entirely", "1700000000", b'{"a":1}', good)
    assert not secrets.verify(SECRET, "1700000001", b'{"a":1}', good)
    assert not secrets.verify(SECRET, "1700000000", b'{"a":2}', good)


def test_batches_hold_at_most_the_batch_size(tiny_model, service, erin, alice, receiver, settings):
    settings.LEARNING_WEBHOOK_BATCH = 2
    webhook_set(model=tiny_model, url=receiver.url, secret=SECRET, actor=erin)
    labelled(tiny_model, service, erin, alice, n=5)
    assert webhook_batches_make(model_id=tiny_model.pk) == 3
    sizes = [len(m.payload["body"]["labels"]) for m in Message.objects.filter(kind="webhook")]
    assert sorted(sizes) == [1, 2, 2]


def test_a_failing_webhook_is_retried_with_backoff_then_dead_with_its_error_on_the_page(
    tiny_model, service, erin, alice, receiver, settings
):
    settings.OUTBOX_MAX_ATTEMPTS = 2
    receiver.status = 503
    webhook_set(model=tiny_model, url=receiver.url, secret=SECRET, actor=erin)
    labelled(tiny_model, service, erin, alice, n=1)
    webhook_batches_make(model_id=tiny_model.pk)
    message = Message.objects.get(kind="webhook")
    assert outbox.message_deliver(message_id=message.pk) == "retry"
    message.refresh_from_db()
    assert "HTTP 503" in message.last_error and message.attempts == 1
    assert outbox.message_deliver(message_id=message.pk) == "dead"
    assert Alert.objects.filter(kind="outbox_dead").exists()

    client = Client()
    client.force_login(erin)
    page = client.get("/models/tiny/learning/").content.decode()
    assert message.key in page and "HTTP 503" in page and "Re-send" in page

    receiver.status = 200
    resent = api(erin).post(f"/api/v1/models/tiny/deliveries/{message.pk}/resend/")
    assert resent.status_code == 200 and resent.json()["status"] == "pending"
    assert AuditEvent.objects.filter(action="outbox.resent", actor="user:erin").exists()
    outbox.messages_sweep()  # eager: delivered now (the label message too)
    message.refresh_from_db()
    assert message.status == "delivered"
    assert [a.delivery_id for a in receiver.arrivals] == [message.key] * 3


def test_the_resend_button_is_the_owners_and_only_for_this_models_messages(
    tiny_model, service, erin, alice, dave
):
    labelled(tiny_model, service, erin, alice, n=1)
    message = Message.objects.get(kind="label")
    Message.objects.filter(pk=message.pk).update(status="dead")
    url = f"/api/v1/models/tiny/deliveries/{message.pk}/resend/"
    assert api(dave).post(url).status_code == 403
    assert api(erin).post("/api/v1/models/tiny/deliveries/999999/resend/").status_code == 404
    client = Client()
    client.force_login(erin)
    response = client.post(f"/models/tiny/learning/deliveries/{message.pk}/resend/")
    assert response.status_code == 302
    message.refresh_from_db()
    assert message.status in ("pending", "delivered")


def test_a_redirect_is_a_failed_delivery_not_a_post_elsewhere(tiny_model, service, erin, alice):
    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(307)
            self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        webhook_set(model=tiny_model, url=url, secret=SECRET, actor=erin)
        labelled(tiny_model, service, erin, alice, n=1)
        webhook_batches_make(model_id=tiny_model.pk)
        message = Message.objects.get(kind="webhook")
        assert outbox.message_deliver(message_id=message.pk) == "retry"
        message.refresh_from_db()
        assert "HTTP 307" in message.last_error
    finally:
        server.shutdown()
        server.server_close()


def test_the_secret_is_stored_encrypted_and_never_shown_again(tiny_model, erin):
    response = api(erin).put(
        "/api/v1/models/tiny/webhook/",
        {"url": "https://models.example.org/hook", "secret": SECRET},
        format="json",
    )
    assert response.status_code == 200
    assert SECRET not in json.dumps(response.json())
    webhook = Webhook.objects.get()
    assert SECRET not in webhook.secret_encrypted
    assert secrets.decrypt(webhook.secret_encrypted) == SECRET
    assert SECRET not in json.dumps(api(erin).get("/api/v1/models/tiny/webhook/").json())
    (event,) = events("webhook.set")
    assert event["url"] == "https://models.example.org/hook" and SECRET not in json.dumps(event)
    client = Client()
    client.force_login(erin)
    assert SECRET not in client.get("/models/tiny/learning/").content.decode()


def test_bad_webhook_settings_are_a_400_naming_the_field(tiny_model, erin, alice, settings):
    put = api(erin).put
    bad_url = put("/api/v1/models/tiny/webhook/", {"url": "ftp://x", "secret": SECRET}, "json")
    assert bad_url.status_code == 400 and "url" in bad_url.json()["error"]["fields"]
    short = put(
        "/api/v1/models/tiny/webhook/", {"url": "https://x.org/", "secret": "short"}, "json"
    )
    assert short.status_code == 400 and "secret" in short.json()["error"]["fields"]
    settings.LEARNING_WEBHOOK_ALLOW_HTTP = False
    plain = put("/api/v1/models/tiny/webhook/", {"url": "http://x.org/", "secret": SECRET}, "json")
    assert plain.status_code == 400
    assert not Webhook.objects.exists()
    assert api(alice).put("/api/v1/models/tiny/webhook/", {}, "json").status_code == 403


def test_removing_the_webhook_stops_batches(tiny_model, service, erin, alice, receiver):
    webhook_set(model=tiny_model, url=receiver.url, secret=SECRET, actor=erin)
    labelled(tiny_model, service, erin, alice, n=2)
    webhook_remove(model=tiny_model, actor=erin)
    assert not LabelRecord.objects.filter(webhook_pending=True).exists()
    assert webhook_batches_make(model_id=tiny_model.pk) == 0
    labelled(tiny_model, service, erin, alice, n=1, start=10)
    assert not LabelRecord.objects.filter(webhook_pending=True).exists()
    assert api(erin).delete("/api/v1/models/tiny/webhook/").status_code == 409
