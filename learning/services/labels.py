"""Labels: written in the transaction of the human outcome that settles a decision, with their
audit event and outbox message; delivered to the training store by the outbox."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from audit import record
from learning import holdout
from learning.models import LabelRecord, TrainingExample, Webhook, outbox_scope
from learning.services.retraining import retraining_if_due
from learning.services.webhooks import batch_after_commit
from outbox.services import message_enqueue
from reviews.hooks import Settlement

KIND = "label"
SOURCES = set(LabelRecord.Source.values)
APPEAL_RESULTS = {"upheld", "overturned"}


def label_record(settlement: Settlement) -> LabelRecord:
    """The label of a settlement (reviews.hooks listener: runs in the settlement's transaction,
    and a failure here rolls the settlement back). An appeal's label supersedes the decision's
    current one: an overturn replaces it, an upheld appeal confirms it; both are kept and the
    appeal's is current."""
    if settlement.source not in SOURCES:
        raise ValueError(f"unknown settlement source {settlement.source!r}")
    if settlement.source == "appeal" and settlement.appeal_result not in APPEAL_RESULTS:
        raise ValueError(
            f"an appeal's result is upheld or overturned, not {settlement.appeal_result!r}"
        )
    decision = settlement.decision
    # Not current first: the database keeps one current label per decision.
    previous, webhook = _retire_current(decision.pk, decision.model_id)
    label = _create(settlement, webhook=webhook)
    if previous is not None:
        LabelRecord.objects.filter(pk=previous).update(superseded_by=label)
    record(
        action="label.recorded",
        actor=settlement.by,
        object_type="decision",
        object_id=decision.pk,
        payload={
            "label": label.pk,
            "outcome": label.label,
            "source": label.source,
            "appeal": settlement.appeal_id,
            "appeal_result": settlement.appeal_result or None,
            "supersedes": previous,
            "reasons": label.reasons,
            "holdout": label.holdout,
            "webhook": label.webhook_pending,
        },
    )
    message_enqueue(
        kind=KIND,
        key=f"label:{label.pk}",
        payload={"label": label.pk},
        scope=outbox_scope(label.model_id),
    )
    if label.webhook_pending:
        # Batched after commit (and by the sweep, should that hand-off be lost).
        batch_after_commit(label.model_id)
    return label


_LABELS, _WEBHOOKS = LabelRecord._meta.db_table, Webhook._meta.db_table
# The decision's current label made not current (the UPDATE locks it, as a SELECT … FOR UPDATE
# would), and whether the model has an active webhook, in one statement.
_RETIRE = f"""
    WITH previous AS (
        UPDATE {_LABELS} SET is_current = false
        WHERE decision_id = %(decision)s AND is_current RETURNING id)
    SELECT (SELECT id FROM previous),
        EXISTS (SELECT 1 FROM {_WEBHOOKS} WHERE model_id = %(model)s AND active)"""  # noqa: S608


def _retire_current(decision_id: int, model_id: int) -> tuple[int | None, bool]:
    """(the id of the decision's label that was current, now not, or None; whether the model
    has an active webhook). One statement on PostgreSQL; three elsewhere."""
    connection = transaction.get_connection()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_RETIRE, {"decision": decision_id, "model": model_id})
            previous, webhook = cursor.fetchone()
        return previous, bool(webhook)
    previous = (
        LabelRecord.objects.select_for_update()
        .filter(decision_id=decision_id, is_current=True)
        .values_list("pk", flat=True)
        .first()
    )
    if previous is not None:
        LabelRecord.objects.filter(pk=previous).update(is_current=False)
    return previous, _has_webhook(model_id)


def _has_webhook(model_id: int) -> bool:
    return Webhook.objects.filter(model_id=model_id, active=True).exists()


def _create(settlement: Settlement, *, webhook: bool) -> LabelRecord:
    decision = settlement.decision
    draw, rate = holdout.audit_draw(decision.routing)
    return LabelRecord.objects.create(
        decision=decision,
        model_id=decision.model_id,
        model_version_id=decision.model_version_id,
        features=decision.features,
        label=settlement.outcome,
        model_outcome=decision.model_outcome,
        source=settlement.source,
        by=settlement.by,
        at=settlement.at,
        review_id=settlement.review.pk if settlement.review else None,
        appeal_id=settlement.appeal_id,
        appeal_result=settlement.appeal_result,
        reasons=list(decision.reasons),
        audit_draw=draw,
        audit_rate=rate,
        holdout=holdout.in_holdout(draw, rate),
        webhook_pending=webhook,
        created_at=timezone.now(),
    )


def deliver_label(message) -> None:
    """The outbox handler of "label" messages: store the label in the training store. Safe to
    run twice (one example per label); a later label marks the one it supersedes not current,
    whichever of the two arrives first."""
    with transaction.atomic():
        label = (
            LabelRecord.objects.select_related("decision")
            .only("decision__external_id", *_LABEL_FIELDS)
            .get(pk=message.payload["label"])
        )
        _, created = TrainingExample.objects.get_or_create(
            record=label,
            defaults={
                "model_id": label.model_id,
                "decision_id": label.decision_id,
                "external_id": label.decision.external_id,
                "features": label.features,
                "label": label.label,
                "source": label.source,
                "reasons": label.reasons,
                "weight": label.weight,
                "supersedes": _superseded_id(label),
                "current": label.is_current,
                "labelled_at": label.at,
                "stored_at": timezone.now(),
                "delivery_id": message.key,
            },
        )
        TrainingExample.objects.filter(record__superseded_by=label).update(current=False)
    if created:
        retraining_if_due(model_id=label.model_id)


_LABEL_FIELDS = (
    "id",
    "decision_id",
    "model_id",
    "features",
    "label",
    "source",
    "reasons",
    "weight",
    "is_current",
    "at",
)


def _superseded_id(label: LabelRecord) -> int | None:
    return LabelRecord.objects.filter(superseded_by=label).values_list("pk", flat=True).first()
