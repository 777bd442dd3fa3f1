"""The owner's webhook: labels POSTed in signed JSON batches, through the outbox.

A label written while the model has a webhook is marked pending in its own transaction; a
batcher (after that commit, and the sweep every minute) moves pending labels into a batch:
one outbox message whose payload is the batch's JSON body, so that every retry sends the
same body under the same delivery id. Each attempt is signed afresh: X-Oversight-Timestamp
and X-Oversight-Signature: sha256=HMAC(secret, "timestamp.body").
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from audit import record
from core import queueing
from core.errors import ApplicationError, invalid
from learning import secrets, tasks
from learning.models import LabelRecord, Webhook, outbox_scope
from models_registry.models import MLModel
from outbox.services import message_enqueue

KIND = "webhook"
MIN_SECRET = 16


def webhook_set(*, model: MLModel, url: str, secret: str, actor: User) -> Webhook:
    """Set (or replace) the model's webhook. The secret is stored encrypted and never shown
    again; labels settled from now on are sent to the URL."""
    url, secret = (url or "").strip(), secret or ""
    errors = _url_errors(url)
    if len(secret) < MIN_SECRET or len(secret) > 500:
        errors["secret"] = [f"must be {MIN_SECRET} to 500 characters (a long random string)"]
    if errors:
        raise invalid(errors)
    with transaction.atomic():
        MLModel.objects.select_for_update().get(pk=model.pk)
        webhook, created = Webhook.objects.update_or_create(
            model=model,
            defaults={
                "url": url,
                "secret_encrypted": secrets.encrypt(secret),
                "active": True,
                "set_by": actor,
                "set_at": timezone.now(),
            },
        )
        record(
            action="webhook.set",
            actor=actor,
            obj=model,
            payload={"model": model.name, "url": url, "replaced": not created},
        )
    return webhook


def _url_errors(url: str) -> dict[str, list[str]]:
    parts = urlsplit(url)
    allowed = ("https", "http") if settings.LEARNING_WEBHOOK_ALLOW_HTTP else ("https",)
    if parts.scheme not in allowed or not parts.hostname:
        return {"url": [f"must be an absolute {' or '.join(allowed)} URL"]}
    if len(url) > 500:
        return {"url": ["must be at most 500 characters"]}
    return {}


def webhook_remove(*, model: MLModel, actor: User) -> None:
    """Stop sending labels to the webhook. Batches already made stay in the outbox (they fail
    until a webhook is set again, and can be re-sent then)."""
    with transaction.atomic():
        removed = Webhook.objects.filter(model=model, active=True).update(active=False)
        if not removed:
            raise ApplicationError(f"{model.name} has no webhook.", code="no_webhook")
        LabelRecord.objects.filter(model=model, webhook_pending=True).update(webhook_pending=False)
        record(action="webhook.removed", actor=actor, obj=model, payload={"model": model.name})


def batch_after_commit(model_id: int) -> None:
    queueing.send_after_commit(tasks.webhook_batch, model_id)


def webhook_batches_make(*, model_id: int) -> int:
    """Put the model's pending labels into batches (outbox messages); returns how many."""
    made = 0
    while _one_batch(model_id):
        made += 1
    return made


def _one_batch(model_id: int) -> bool:
    with transaction.atomic():
        # The webhook row serializes batchers of one model: a label goes in one batch.
        webhook = Webhook.objects.select_for_update().filter(model_id=model_id, active=True).first()
        if webhook is None:
            return False
        labels = list(
            LabelRecord.objects.filter(model_id=model_id, webhook_pending=True)
            .select_related("decision", "model")
            .prefetch_related("supersedes")
            .order_by("pk")[: settings.LEARNING_WEBHOOK_BATCH]
        )
        if not labels:
            return False
        key = f"webhook:{model_id}:{labels[0].pk}-{labels[-1].pk}"
        message = message_enqueue(
            kind=KIND,
            key=key,
            payload={"model_id": model_id, "body": _body(key, labels)},
            scope=outbox_scope(model_id),
        )
        LabelRecord.objects.filter(pk__in=[label.pk for label in labels]).update(
            webhook_pending=False, webhook_message=message
        )
        record(
            action="webhook.batched",
            object_type="message",
            object_id=message.pk,
            payload={
                "model": labels[0].model.name,
                "delivery_id": key,
                "labels": [label.pk for label in labels],
            },
        )
    return True


def _body(delivery_id: str, labels: list[LabelRecord]) -> dict:
    return {
        "delivery_id": delivery_id,
        "model": labels[0].model.name,
        "labels": [label_json(label) for label in labels],
    }


def label_json(label: LabelRecord) -> dict:
    """A label as model services read it (the webhook body and the labels API)."""
    return {
        "id": label.pk,
        "decision": label.decision_id,
        "external_id": label.decision.external_id,
        "features": label.features,
        "label": label.label,
        "source": label.source,
        "reasons": label.reasons,
        "weight": label.weight,
        "labelled_at": label.at.isoformat(),
        # The label this one replaces (an appeal's), so that receivers can drop it.
        "supersedes": next((old.pk for old in label.supersedes.all()), None),
    }


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # a redirect is a failed delivery, not a POST sent somewhere else


_opener = urllib.request.build_opener(_NoRedirects)


def deliver_webhook(message) -> None:
    """The outbox handler of "webhook" messages: POST the batch, signed. A 2xx is delivered;
    anything else raises, and the outbox retries with backoff."""
    webhook = Webhook.objects.filter(model_id=message.payload["model_id"], active=True).first()
    if webhook is None:
        raise RuntimeError("the model has no webhook any more; set one and re-send")
    body = json.dumps(message.payload["body"], separators=(",", ":"), sort_keys=True).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked when it is set)
        webhook.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Oversight-Webhook/1",
            secrets.DELIVERY_HEADER: message.key,
            secrets.TIMESTAMP_HEADER: timestamp,
            secrets.SIGNATURE_HEADER: secrets.signature(
                secrets.decrypt(webhook.secret_encrypted), timestamp, body
            ),
        },
    )
    try:
        with _opener.open(request, timeout=settings.LEARNING_WEBHOOK_TIMEOUT) as response:
            response.read(1024)
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"the webhook answered HTTP {exc.code}") from None
