"""E-mails to the person who appealed, written to the outbox in the transaction of the change
(sent after commit, re-sent by the sweep). They never carry the access code, nor anything the
portal would not show the person."""

from __future__ import annotations

from django.conf import settings

from appeals import codes
from appeals.models import Appeal
from outbox import email
from outbox.services import message_enqueue

RESULTS = {
    Appeal.Status.UPHELD: "The decision stands: your appeal was not upheld.",
    Appeal.Status.OVERTURNED: "Your appeal succeeded: the decision was changed.",
}


def portal_url() -> str:
    return f"{settings.SITE_URL.rstrip('/')}/my-decision/"


def _send(appeal: Appeal, what: str, subject: str, body: str) -> None:
    if not appeal.contact_email:
        return
    message_enqueue(
        kind=email.KIND,
        key=f"appeal:{appeal.pk}:{what}",
        scope=f"appeal:{appeal.pk}",
        payload=email.payload(to=[appeal.contact_email], subject=subject, body=body),
    )


def _reference(appeal: Appeal) -> str:
    return codes.show_reference(appeal.decision.access.reference)


def received(appeal: Appeal) -> None:
    reference = _reference(appeal)
    _send(
        appeal,
        "received",
        f"We received your appeal ({reference})",
        f"We received your appeal of decision {reference} on {appeal.filed_at:%d %B %Y}.\n\n"
        "A senior reviewer who took no part in the decision will look at it, with your "
        "grounds and any corrections you gave, and answer by "
        f"{appeal.due_at:%d %B %Y}.\n\n"
        f"You can follow it, or withdraw it, at {portal_url()} with your reference and "
        "the access code you were given (this e-mail does not contain it).\n",
    )


def decided(appeal: Appeal) -> None:
    reference = _reference(appeal)
    outcome = (
        f"\nThe outcome is now: {appeal.outcome_after}.\n"
        if appeal.status == Appeal.Status.OVERTURNED
        else ""
    )
    _send(
        appeal,
        "decided",
        f"The decision on your appeal ({reference})",
        f"{RESULTS[appeal.status]}\n{outcome}\nThe reviewer's reasons:\n\n{appeal.reasons}\n\n"
        f"The full notice, and a verifiable receipt of your record, are at {portal_url()} "
        "(sign in with your reference and access code).\n",
    )


def withdrawn(appeal: Appeal) -> None:
    _send(
        appeal,
        "withdrawn",
        f"Your appeal was withdrawn ({_reference(appeal)})",
        f"Your appeal of decision {_reference(appeal)} was withdrawn on "
        f"{appeal.withdrawn_at:%d %B %Y}. Nothing more will be done with it.\n",
    )
