from __future__ import annotations

from django.db import models
from django.db.models import Q


class Message(models.Model):
    """One message to deliver. `key` is its delivery id: enqueuing the same key twice is one
    message, and receivers can use it to recognise a repeat."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        DEAD = "dead"

    kind = models.CharField(max_length=50)
    key = models.CharField(max_length=200, unique=True)
    payload = models.JSONField()
    # What the message belongs to, for pages and counts (e.g. "model:12", "appeal:3").
    scope = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # A worker is delivering it until then; after that (the worker died) anyone may try again.
    leased_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], condition=Q(status="pending"), name="outbox_due_idx"
            ),
            models.Index(fields=["scope", "status"], name="outbox_scope_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} message {self.pk} ({self.status})"
