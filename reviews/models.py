from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from models_registry.models import MLModel, ModelVersion
from reviews.fields import CanonicalJSONField

REASONS = ("review_all", "low_confidence", "high_stakes", "random_audit", "active_learning")


class Decision(models.Model):
    """One prediction, routed to people or not. Every prediction becomes a Decision."""

    class Status(models.TextChoices):
        PENDING_REVIEW = "pending_review"
        FINAL = "final"

    class FinalizedBy(models.TextChoices):
        MODEL = "model"
        REVIEWER = "reviewer"
        ADJUDICATOR = "adjudicator"
        APPEAL = "appeal"

    class ScoredBy(models.TextChoices):
        OVERSIGHT = "oversight"
        CLIENT = "client"

    model = models.ForeignKey(MLModel, on_delete=models.PROTECT, related_name="decisions")
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="decisions"
    )
    external_id = models.CharField(max_length=200)
    subject_ref = models.CharField(max_length=200)
    features = models.JSONField()
    scored_by = models.CharField(max_length=10, choices=ScoredBy.choices)
    model_outcome = models.CharField(max_length=100)
    confidence = models.FloatField()
    probabilities = models.JSONField(default=dict, blank=True)
    margin = models.FloatField(null=True, blank=True)
    # Canonical JSON text, hashed at ingest from the same bytes; never queried in SQL.
    explanation = CanonicalJSONField(default=dict, blank=True)
    policy_version = models.PositiveIntegerField(null=True, blank=True)
    # {"policy_version", "reasons": [...], "conditions": [{"name", "fired", ...}, ...]}
    routing = models.JSONField(default=dict, blank=True)
    routed = models.BooleanField()
    # ",low_confidence,high_stakes," so that one reason can be filtered on any database.
    reason_tags = models.CharField(max_length=200, blank=True)
    # The reasons as blind review shows them (reviews.selectors.blind_routing): high_stakes only
    # when a rule that does not test the model's answer fired. Whoever may not see the answer
    # filters on these (reviews.selectors.decisions_filtered).
    blind_reason_tags = models.CharField(max_length=200, blank=True, default="", db_default="")
    status = models.CharField(max_length=20, choices=Status.choices)
    final_outcome = models.CharField(max_length=100, blank=True)
    finalized_by = models.CharField(max_length=20, choices=FinalizedBy.choices, blank=True)
    finalized_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    finalized_at = models.DateTimeField(null=True, blank=True)
    # SHA-256 of the canonical, validated request: same key + same body is a retry.
    request_sha256 = models.CharField(max_length=64)
    ingested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    received_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["model", "external_id"], name="decision_external_id"),
        ]
        indexes = [
            models.Index(fields=["model", "received_at"], name="decision_model_time_idx"),
            models.Index(fields=["received_at"], name="decision_time_idx"),
            models.Index(fields=["status", "received_at"], name="decision_status_idx"),
        ]

    def __str__(self) -> str:
        return f"decision {self.pk} ({self.model_id}:{self.external_id})"

    @property
    def reasons(self) -> list[str]:
        return self.routing.get("reasons", [])


class ProtectedAttribute(models.Model):
    """A protected attribute of the decision's subject (race, sex...), kept apart from the
    features the model sees, readable only by roles that need it (group reports)."""

    decision = models.ForeignKey(Decision, on_delete=models.PROTECT, related_name="protected")
    name = models.CharField(max_length=64)
    value = models.CharField(max_length=100)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["decision", "name"], name="protected_once"),
        ]
        indexes = [models.Index(fields=["name", "value"], name="protected_group_idx")]

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


class ReviewTask(models.Model):
    """A unit of queue work on a decision."""

    class Kind(models.TextChoices):
        INITIAL = "initial"
        SECOND_OPINION = "second_opinion"
        ADJUDICATION = "adjudication"
        APPEAL = "appeal"

    class State(models.TextChoices):
        OPEN = "open"
        CLAIMED = "claimed"
        DONE = "done"
        CANCELLED = "cancelled"

    decision = models.ForeignKey(Decision, on_delete=models.PROTECT, related_name="tasks")
    # The decision's model, kept on the task so the queue is counted and filtered without a join.
    model = models.ForeignKey(MLModel, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    priority = models.SmallIntegerField(default=0)
    due_at = models.DateTimeField()
    senior_only = models.BooleanField(default=False)
    # Fixed when the task is opened, from the policy then in force.
    blind = models.BooleanField(default=False)
    # A known-answer check: served like any task; the answer is compared, the decision untouched.
    is_gold = models.BooleanField(default=False)
    note = models.TextField(blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # A reviewer never holds or answers two tasks of one decision: second opinions go
            # to someone else, adjudication to someone who took no part. Released and expired
            # tasks drop their assignee, so they do not count.
            models.UniqueConstraint(
                fields=["decision", "assignee"],
                condition=Q(assignee__isnull=False),
                name="one_task_per_reviewer_per_decision",
            ),
        ]
        indexes = [
            # The queue: open tasks by priority, then due time (a partial index stays small).
            models.Index(
                fields=["-priority", "due_at", "id"],
                condition=Q(state="open"),
                name="task_open_queue_idx",
            ),
            models.Index(
                fields=["assignee", "state"],
                condition=Q(state="claimed"),
                name="task_claimed_idx",
            ),
            models.Index(
                fields=["lease_expires_at"],
                condition=Q(state="claimed"),
                name="task_lease_idx",
            ),
            models.Index(
                fields=["model", "kind"], condition=Q(state="open"), name="task_open_model_idx"
            ),
            models.Index(fields=["due_at"], condition=Q(state="open"), name="task_open_due_idx"),
            models.Index(fields=["decision", "assignee"], name="task_involved_idx"),
            models.Index(fields=["decision", "state"], name="task_decision_idx"),
        ]

    def __str__(self) -> str:
        return f"task {self.pk} ({self.kind}, {self.state})"


class ActiveLearningDay(models.Model):
    """How much of a model's daily active-learning budget has been spent."""

    model = models.ForeignKey(MLModel, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    used = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "day"], name="al_day_once")]

    def __str__(self) -> str:
        return f"{self.model_id} {self.day}: {self.used}"


class Review(models.Model):
    """A reviewer's answer to a task."""

    class Verdict(models.TextChoices):
        AGREE = "agree"
        OVERRIDE = "override"

    task = models.OneToOneField(ReviewTask, on_delete=models.PROTECT, related_name="review")
    decision = models.ForeignKey(Decision, on_delete=models.PROTECT, related_name="reviews")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=20, choices=ReviewTask.Kind.choices)
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    outcome = models.CharField(max_length=100)
    agrees_with_model = models.BooleanField()
    reason_code = models.CharField(max_length=50, blank=True)
    rationale = models.TextField(blank=True)
    # An override may carry words for the person the decision is about; their notice quotes
    # them instead of the reason code's public wording. The rationale is for colleagues.
    explanation_for_person = models.TextField(blank=True)
    seconds_spent = models.FloatField()
    model_hidden = models.BooleanField()
    is_gold = models.BooleanField(default=False)
    gold_correct = models.BooleanField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["reviewer", "created_at"], name="review_reviewer_idx"),
            models.Index(fields=["decision"], name="review_decision_idx"),
        ]

    def __str__(self) -> str:
        return f"review {self.pk} of decision {self.decision_id}: {self.outcome}"


class GoldLabel(models.Model):
    """The known correct outcome of a decision, used to check reviewers' accuracy."""

    decision = models.OneToOneField(Decision, on_delete=models.PROTECT, related_name="gold")
    outcome = models.CharField(max_length=100)
    note = models.TextField(blank=True)
    # The reasons its copies are shown with (reviews.selectors.shown_routing), fixed when it is
    # marked: the decision's own as its copies' reviewers see them, or, when it has none, those
    # of an ordinary sample (review_all when the policy reviews all, else random_audit). The
    # decision is shown to whoever may be served a copy as awaiting review for these reasons.
    pose_tags = models.CharField(max_length=200, blank=True, default="", db_default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"gold {self.decision_id}: {self.outcome}"
