"""E-mail through Django's e-mail framework (EMAIL_URL picks the backend; the console by
default). The payload is {"to": [...], "subject": ..., "body": ...}."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils.text import slugify

KIND = "email"


def payload(*, to: list[str], subject: str, body: str) -> dict:
    return {"to": list(to), "subject": subject, "body": body}


def deliver(message) -> None:
    data = message.payload
    email = EmailMessage(
        subject=data["subject"],
        body=data["body"],
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=data["to"],
        # One Message-ID per outbox message: a resend after a crash is recognisably the same.
        headers={"Message-ID": f"<{slugify(message.key)}.{message.pk}@{settings.EMAIL_DOMAIN}>"},
    )
    email.send(fail_silently=False)
