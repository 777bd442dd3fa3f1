"""Filing an appeal, its review starting, and its withdrawal."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from appeals import attachments, emails
from appeals.attachments import Attachment
from appeals.models import Appeal
from appeals.services.access import reference_ensure
from audit import record, record_many
from audit.canonical import canonical_json
from audit.log import Actor
from core.errors import ApplicationError, invalid, not_found
from models_registry import schema
from models_registry.selectors import current_policy
from reviews.models import Decision, ReviewTask
from reviews.services.appeal_work import appeal_task_cancel, appeal_task_open

GROUNDS_MIN, GROUNDS_MAX = 20, 5000
ALREADY = "This decision has been appealed already: one appeal per decision."


# --- may it be appealed? -------------------------------------------------------------------


@dataclass
class Appealability:
    """Whether the decision may be appealed now; if not, why, and when that may change."""

    allowed: bool
    code: str = ""  # "not_final", "window_closed", "already_appealed"
    message: str = ""
    until: datetime | None = None  # the last moment to appeal
    come_back: datetime | None = None  # when a pending review is due


def appealability(decision: Decision, now: datetime | None = None) -> Appealability:
    now = now or timezone.now()
    if Appeal.objects.filter(decision_id=decision.pk).exists():
        return Appealability(False, "already_appealed", ALREADY)
    if decision.status != Decision.Status.FINAL or decision.finalized_at is None:
        due = _review_due(decision)
        when = f"Come back after {due:%d %B %Y}, when the review is due." if due else ""
        return Appealability(
            False,
            "not_final",
            "This decision is still waiting for a person to review it, so it cannot be "
            f"appealed yet. {when}".strip(),
            come_back=due,
        )
    until = decision.finalized_at + timedelta(
        days=current_policy(decision.model).appeal_window_days
    )
    if now > until:
        return Appealability(
            False,
            "window_closed",
            f"The time to appeal this decision ended on {until:%d %B %Y}.",
            until=until,
        )
    return Appealability(True, until=until)


def _review_due(decision: Decision) -> datetime | None:
    waiting = decision.tasks.filter(
        is_gold=False, state__in=[ReviewTask.State.OPEN, ReviewTask.State.CLAIMED]
    )
    return max(waiting.values_list("due_at", flat=True), default=None)


# --- what the person gives -----------------------------------------------------------------


def check_input(
    decision: Decision,
    grounds: Any,
    corrections: Any,
    contact_email: Any,
    attachment: tuple[str, bytes] | None = None,
    errors: dict[str, list[str]] | None = None,
) -> tuple[str, dict, str, Attachment | None]:
    """(grounds, corrections, contact e-mail, attachment), checked; a 400 naming every bad
    field (with those the caller found already, in `errors`)."""
    errors = dict(errors or {})
    document = None
    if attachment is not None:
        try:
            document = attachments.check(*attachment)
        except ApplicationError as exc:
            errors.update(exc.fields)
    grounds = grounds.strip() if isinstance(grounds, str) else ""
    if not GROUNDS_MIN <= len(grounds) <= GROUNDS_MAX:
        errors["grounds"] = [
            f"must be {GROUNDS_MIN} to {GROUNDS_MAX:,} characters: say why the decision is "
            f"wrong (you wrote {len(grounds):,})"
        ]
    clean = check_corrections(decision, corrections, errors)
    email = contact_email.strip() if isinstance(contact_email, str) else ""
    if email:
        try:
            validate_email(email)
        except ValidationError:
            errors["contact_email"] = ["is not an e-mail address"]
    if errors:
        raise invalid(errors)
    return grounds, clean, email, document


def check_corrections(decision: Decision, corrections: Any, errors: dict) -> dict:
    """The facts the person says are wrong, each checked against the model's schema."""
    if corrections in (None, ""):
        return {}
    if not isinstance(corrections, dict):
        errors["corrections"] = ['must map features to their correct values: {"income": 72}']
        return {}
    clean = {}
    for name, value in corrections.items():
        where = f"corrections.{name}"
        spec = decision.model.feature(name) if isinstance(name, str) else None
        if spec is None:
            errors[where] = ["is not a feature of this model"]
            continue
        value, message = schema.check_value(spec, value)
        if message:
            errors[where] = [message]
        elif value == decision.features.get(name):
            errors[where] = ["is already this value in the decision: give only what is wrong"]
        else:
            clean[name] = value
    return clean


# --- filing --------------------------------------------------------------------------------


def appeal_file(
    *,
    decision: Decision,
    grounds: str,
    actor: Actor,
    via: str,
    corrections: dict | None = None,
    contact_email: str = "",
    attachment: tuple[str, bytes] | None = None,
    filed_by: Any = None,
) -> Appeal:
    """File the person's appeal (through the portal, or a service on their behalf): a
    senior-only appeal task opens, due in APPEAL_SLA_DAYS; an acknowledgement is e-mailed
    when a contact address is given. One appeal per decision, only of a final decision, only
    within the model's appeal window. `attachment` is (the file's name, its bytes)."""
    grounds, corrections, contact_email, document = check_input(
        decision, grounds, corrections, contact_email, attachment
    )
    reference_ensure(decision=decision, actor=actor)
    stored = attachments.store(document) if document else ""
    try:
        with transaction.atomic():
            given = Given(grounds, corrections, contact_email, document, stored)
            return _file(decision, given, via=via, actor=actor, filed_by=filed_by)
    except IntegrityError:
        attachments.remove(stored)
        raise _refusal(Appealability(False, "already_appealed", ALREADY)) from None
    except BaseException:
        # Nothing was filed: the file written for it goes too.
        attachments.remove(stored)
        raise


def _refusal(why: Appealability) -> ApplicationError:
    extra = {k: v.isoformat() for k, v in (("until", why.until), ("come_back", why.come_back)) if v}
    return ApplicationError(why.message, code=why.code, extra=extra)


@dataclass
class Given:
    grounds: str
    corrections: dict
    contact_email: str
    attachment: Attachment | None
    stored: str


def _file(decision: Decision, given: Given, *, via: str, actor: Actor, filed_by: Any) -> Appeal:
    now = timezone.now()
    # The decision first, as every service that changes it and its tasks: two filings at once
    # take turns here, and the second finds the first's appeal.
    decision = (
        Decision.objects.select_for_update(of=("self",)).select_related("model").get(pk=decision.pk)
    )
    why = appealability(decision, now)
    if not why.allowed:
        raise _refusal(why)
    due = now + timedelta(days=settings.APPEAL_SLA_DAYS)
    note = _task_note(given.grounds)
    task = appeal_task_open(decision=decision, due_at=due, now=now, note=note)
    attachment = given.attachment
    appeal = Appeal.objects.create(
        decision=decision,
        grounds=given.grounds,
        corrections=given.corrections,
        contact_email=given.contact_email,
        attachment_name=attachment.name if attachment else "",
        attachment_type=attachment.content_type if attachment else "",
        attachment_size=attachment.size if attachment else None,
        attachment_sha256=attachment.sha256 if attachment else "",
        attachment_path=given.stored,
        filed_via=via,
        filed_by=filed_by,
        filed_at=now,
        due_at=due,
        task=task,
        outcome_before=decision.final_outcome,
    )
    record_many([_filed_event(appeal, actor), _task_event(task, appeal)])
    emails.received(appeal)
    return appeal


def _task_note(grounds: str) -> str:
    short = grounds if len(grounds) <= 200 else grounds[:197] + "…"
    return f"Appeal by the person the decision is about: {short}"


def _digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def _filed_event(appeal: Appeal, actor: Actor) -> dict:
    """The appeal, as the audit trail keeps it: what the person wrote by its digest (the log
    is forever and public to auditors; the text stays with the appeal)."""
    return {
        "action": "appeal.filed",
        "actor": actor,
        "object_type": "decision",
        "object_id": appeal.decision_id,
        "payload": {
            "appeal": appeal.pk,
            "via": appeal.filed_via,
            "task": appeal.task_id,
            "due_at": appeal.due_at.isoformat(),
            "outcome_appealed": appeal.outcome_before,
            "grounds_sha256": _digest(appeal.grounds),
            "corrected_features": sorted(appeal.corrections),
            "corrections_sha256": _digest(appeal.corrections),
            "contact_email_given": bool(appeal.contact_email),
            "attachment": _attachment_facts(appeal),
        },
    }


def _attachment_facts(appeal: Appeal) -> dict | None:
    if not appeal.attachment_path:
        return None
    return {
        "sha256": appeal.attachment_sha256,
        "type": appeal.attachment_type,
        "size": appeal.attachment_size,
    }


def _task_event(task: ReviewTask, appeal: Appeal) -> dict:
    return {
        "action": "task.opened",
        "actor": None,
        "object_type": "decision",
        "object_id": task.decision_id,
        "payload": {"task": task.pk, "kind": task.kind, "reason": "appeal", "appeal": appeal.pk},
    }


# --- in review, withdrawn ------------------------------------------------------------------


def appeal_review_started(task: ReviewTask) -> None:
    """reviews.hooks.on_claimed: a senior took the appeal's task, so the appeal is in review
    (the first time; released and claimed again, it stays in review)."""
    if task.kind != ReviewTask.Kind.APPEAL:
        return
    now = timezone.now()
    started = Appeal.objects.filter(task_id=task.pk, status=Appeal.Status.SUBMITTED).update(
        status=Appeal.Status.IN_REVIEW, review_started_at=now
    )
    if started:
        appeal_id = Appeal.objects.filter(task_id=task.pk).values_list("pk", flat=True).get()
        record(
            action="appeal.in_review",
            actor=task.assignee,
            object_type="decision",
            object_id=task.decision_id,
            payload={"appeal": appeal_id, "task": task.pk},
        )


def appeal_withdraw(*, appeal_id: int, actor: Actor) -> Appeal:
    """The person withdraws their appeal before it is decided; its task closes (a senior
    holding it is told the task was closed when they answer)."""
    found = Appeal.objects.filter(pk=appeal_id).values("decision_id", "task_id").first()
    if found is None:
        raise not_found("No such appeal.")
    now = timezone.now()
    with transaction.atomic():
        # The decision, the task, then the appeal: the order every appeal service locks in.
        Decision.objects.select_for_update(of=("self",)).filter(pk=found["decision_id"]).get()
        appeal_task_cancel(task_id=found["task_id"], now=now)
        appeal = (
            Appeal.objects.select_for_update(of=("self",))
            .select_related("decision__access")
            .get(pk=appeal_id)
        )
        if not appeal.is_open:
            raise ApplicationError(
                f"This appeal is {appeal.get_status_display().lower()} already; it can be "
                "withdrawn only before it is decided.",
                code="appeal_closed",
            )
        appeal.status, appeal.withdrawn_at = Appeal.Status.WITHDRAWN, now
        appeal.save(update_fields=["status", "withdrawn_at"])
        record(
            action="appeal.withdrawn",
            actor=actor,
            object_type="decision",
            object_id=appeal.decision_id,
            payload={"appeal": appeal.pk, "task": appeal.task_id},
        )
        emails.withdrawn(appeal)
    return appeal
