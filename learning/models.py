"""The label loop's records: human labels, the training store they are delivered to, the
owner's webhook, retraining runs, evaluations on the holdout, and shadow scores."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from models_registry.models import MLModel, ModelVersion
from outbox.models import Message
from reviews.models import Decision


def outbox_scope(model_id: int) -> str:
    """The outbox scope of a model's label and webhook messages."""
    return f"model:{model_id}"


class LabelRecord(models.Model):
    """A human outcome that settled a decision, as a training label. Written in the
    transaction of the settlement. A later appeal supersedes it (both are kept; exactly one
    label of a decision is current)."""

    class Source(models.TextChoices):
        REVIEW = "review"
        ADJUDICATION = "adjudication"
        APPEAL = "appeal"

    decision = models.ForeignKey(Decision, on_delete=models.PROTECT, related_name="labels")
    model = models.ForeignKey(MLModel, on_delete=models.PROTECT, related_name="+")
    # The version that scored the decision (None when the client scored it).
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    features = models.JSONField()  # as scored
    label = models.CharField(max_length=100)
    model_outcome = models.CharField(max_length=100)
    source = models.CharField(max_length=20, choices=Source.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    at = models.DateTimeField()
    review_id = models.BigIntegerField(null=True, blank=True)
    appeal_id = models.BigIntegerField(null=True, blank=True)
    appeal_result = models.CharField(max_length=20, blank=True)  # upheld / overturned
    # The decision's routing reasons: labels of random audits are unbiased samples; those of
    # active learning and low confidence are not.
    reasons = models.JSONField(default=list)
    # The random-audit draw and rate of the routing trace, when the audit fired: they put the
    # label in the holdout or the training half, for good (learning.holdout).
    audit_draw = models.FloatField(null=True, blank=True)
    audit_rate = models.FloatField(null=True, blank=True)
    holdout = models.BooleanField(default=False)
    weight = models.FloatField(default=1.0)
    is_current = models.BooleanField(default=True)
    superseded_by = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="supersedes"
    )
    # Waiting to be put in a webhook batch (set when the model had a webhook at the time).
    webhook_pending = models.BooleanField(default=False)
    webhook_message = models.ForeignKey(
        Message, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Versions trained on this label (set when a retrained candidate is registered).
    trained_into = models.ManyToManyField(ModelVersion, blank=True, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["decision"], condition=Q(is_current=True), name="one_current_label"
            ),
        ]
        indexes = [
            models.Index(fields=["model", "created_at"], name="label_model_time_idx"),
            models.Index(
                fields=["model", "id"], condition=Q(webhook_pending=True), name="label_webhook_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"label {self.pk} of decision {self.decision_id}: {self.label} ({self.source})"


class TrainingExample(models.Model):
    """Oversight's training store: a label as delivered (through the outbox) for the model's
    services to read. One row per label, however often its delivery ran."""

    record = models.OneToOneField(LabelRecord, on_delete=models.PROTECT, related_name="example")
    model = models.ForeignKey(MLModel, on_delete=models.PROTECT, related_name="+")
    decision_id = models.BigIntegerField()
    external_id = models.CharField(max_length=200)
    features = models.JSONField()
    label = models.CharField(max_length=100)
    source = models.CharField(max_length=20)
    reasons = models.JSONField(default=list)
    weight = models.FloatField(default=1.0)
    supersedes = models.BigIntegerField(null=True, blank=True)  # a label id
    current = models.BooleanField(default=True)
    labelled_at = models.DateTimeField()
    stored_at = models.DateTimeField()
    delivery_id = models.CharField(max_length=200)

    class Meta:
        indexes = [
            models.Index(fields=["model", "stored_at"], name="example_model_time_idx"),
            models.Index(fields=["model", "id"], name="example_model_idx"),
        ]

    def __str__(self) -> str:
        return f"example of label {self.record_id}"


class Webhook(models.Model):
    """Where the owner wants label batches POSTed. The secret signs each batch (HMAC), so it
    must be recoverable: it is stored encrypted (learning.secrets), never shown again."""

    model = models.OneToOneField(MLModel, on_delete=models.PROTECT, related_name="+")
    url = models.URLField(max_length=500)
    secret_encrypted = models.TextField()
    active = models.BooleanField(default=True)
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    set_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"webhook of {self.model_id}: {self.url}"


class Evaluation(models.Model):
    """A candidate and the champion measured on the same holdout in the same run."""

    class Purpose(models.TextChoices):
        RETRAINING = "retraining"
        PROMOTION = "promotion"

    model = models.ForeignKey(MLModel, on_delete=models.PROTECT, related_name="+")
    candidate = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    champion = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    purpose = models.CharField(max_length=20, choices=Purpose.choices)
    # {"labels": n, "test_split_rows": n, "rows": n, "sha256": digest of the rows' ids}
    holdout = models.JSONField(default=dict)
    # {"candidate": {...}, "champion": {...}, "groups": {...}, "checks": [...]} (learning.gate)
    report = models.JSONField(default=dict)
    passed = models.BooleanField()
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["model", "-created_at"], name="evaluation_model_idx")]

    def __str__(self) -> str:
        return f"evaluation {self.pk} of version {self.candidate_id}"


class RetrainingRun(models.Model):
    """One retraining: clone the champion's estimator, fit on its base training data plus the
    current human labels (holdout excluded), register the candidate, evaluate it."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    class Trigger(models.TextChoices):
        MANUAL = "manual"
        AUTOMATIC = "automatic"

    model = models.ForeignKey(MLModel, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    requested_at = models.DateTimeField()
    # Labels up to this id are this run's; "new labels since the last run" are those above it.
    label_cutoff = models.BigIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    parent = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    candidate = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    evaluation = models.ForeignKey(
        Evaluation, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    labels_by_source = models.JSONField(default=dict, blank=True)
    base_rows = models.PositiveIntegerField(default=0)
    training_seconds = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        constraints = [
            # One run at a time per model: two would fit on the same labels for nothing.
            models.UniqueConstraint(
                fields=["model"],
                condition=Q(status__in=["queued", "running"]),
                name="one_active_retraining",
            ),
        ]
        indexes = [models.Index(fields=["model", "-requested_at"], name="retraining_model_idx")]

    def __str__(self) -> str:
        return f"retraining {self.pk} of {self.model_id} ({self.status})"


class ShadowScore(models.Model):
    """A new decision scored again, after commit, by the model's candidate version."""

    decision = models.ForeignKey(Decision, on_delete=models.PROTECT, related_name="+")
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    outcome = models.CharField(max_length=100)
    confidence = models.FloatField()
    agrees_with_model = models.BooleanField()
    scored_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["decision", "version"], name="one_shadow_score"),
        ]
        indexes = [models.Index(fields=["version", "decision"], name="shadow_version_idx")]

    def __str__(self) -> str:
        return f"shadow score of decision {self.decision_id} by version {self.version_id}"
