from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Export(models.Model):
    """A decision-log export, written by a background job."""

    class Format(models.TextChoices):
        CSV = "csv"
        JSONL = "jsonl"
        PARQUET = "parquet"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField()
    format = models.CharField(max_length=10, choices=Format.choices)
    filters = models.JSONField(default=dict, blank=True)
    pseudonymise = models.BooleanField(default=False)
    include_bundle = models.BooleanField(default=False)
    # Decided from the requester's role when the export is requested.
    include_groups = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    # While running, the worker's heartbeat (core.jobs); how many times a worker took it.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    progress = models.PositiveSmallIntegerField(default=0)
    rows = models.BigIntegerField(default=0)
    file_name = models.CharField(max_length=200, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    manifest = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"export {self.pk} ({self.format}, {self.status})"


class BreakerTrip(models.Model):
    """One trip of a model's review-all breaker: the system turned `review_all` on in a new
    routing-policy version because a measurement crossed its threshold; open until the model's
    owner or a senior reviewer resets it with a note (which writes the next policy version)."""

    model = models.ForeignKey(
        "models_registry.MLModel", on_delete=models.PROTECT, related_name="breaker_trips"
    )
    # "drift" or "random_audit_override": which measurement tripped it.
    cause = models.CharField(max_length=40)
    measurement = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    tripped_at = models.DateTimeField()
    policy_version = models.PositiveIntegerField()
    # review_all as it was before the trip, restored by the reset.
    review_all_before = models.BooleanField(default=False)
    reset_at = models.DateTimeField(null=True, blank=True)
    reset_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reset_note = models.TextField(blank=True)
    reset_policy_version = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-tripped_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["model"], condition=Q(reset_at__isnull=True), name="one_open_trip_per_model"
            ),
        ]

    def __str__(self) -> str:
        state = "reset" if self.reset_at else "tripped"
        return f"breaker of model {self.model_id}: {state} ({self.cause})"
