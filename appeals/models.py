from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from reviews.models import Decision, ReviewTask


class DecisionAccess(models.Model):
    """How the person a decision is about reaches it: a public reference (random, not derived
    from the id) and, once the model's service asks for one, an access code, of which only a
    slow hash is kept. Sign-in failures are counted here, in the database every web process
    shares, so that guessing is stopped however many processes serve the portal."""

    decision = models.OneToOneField(Decision, on_delete=models.PROTECT, related_name="access")
    reference = models.CharField(max_length=16, unique=True)
    code_hash = models.CharField(max_length=200, blank=True)
    code_issued_at = models.DateTimeField(null=True, blank=True)
    code_expires_at = models.DateTimeField(null=True, blank=True)
    code_issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Failed sign-ins since the last success or lockout; lockouts in a row (each one twice as
    # long as the one before); the end of the current lockout.
    failures = models.PositiveIntegerField(default=0)
    lockouts = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "decision access"

    def __str__(self) -> str:
        return f"access to decision {self.decision_id} ({self.reference})"


class SignInWindow(models.Model):
    """Portal sign-in attempts from one client address (a keyed hash of it, never the address
    itself) in one fixed window of time: the per-address rate limit."""

    client = models.CharField(max_length=64)
    window_start = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client", "window_start"], name="sign_in_window_once")
        ]
        indexes = [models.Index(fields=["window_start"], name="sign_in_window_time_idx")]

    def __str__(self) -> str:
        return f"{self.client[:8]}… {self.window_start:%H:%M}: {self.attempts}"


class Appeal(models.Model):
    """A final decision contested by the person it is about; decided by a senior reviewer who
    took no part in it, through a senior-only `appeal` review task."""

    class Status(models.TextChoices):
        SUBMITTED = "submitted"
        IN_REVIEW = "in_review"
        UPHELD = "upheld"
        OVERTURNED = "overturned"
        WITHDRAWN = "withdrawn"

    class Via(models.TextChoices):
        PORTAL = "portal"
        SERVICE = "service"

    OPEN_STATUSES = (Status.SUBMITTED, Status.IN_REVIEW)

    # One appeal per decision, held by the database.
    decision = models.OneToOneField(Decision, on_delete=models.PROTECT, related_name="appeal")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SUBMITTED)
    grounds = models.TextField()
    # {"income": 72.0}: the facts the person says are wrong, checked against the schema.
    corrections = models.JSONField(default=dict, blank=True)
    contact_email = models.EmailField(blank=True)
    # The attachment, stored outside static files (APPEAL_FILES_DIR); its type is read from
    # its first bytes, never from its name.
    attachment_name = models.CharField(max_length=200, blank=True)
    attachment_type = models.CharField(max_length=40, blank=True)
    attachment_size = models.PositiveIntegerField(null=True, blank=True)
    attachment_sha256 = models.CharField(max_length=64, blank=True)
    attachment_path = models.CharField(max_length=200, blank=True)
    filed_via = models.CharField(max_length=10, choices=Via.choices)
    filed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    filed_at = models.DateTimeField()
    # The answer is due by then (APPEAL_SLA_DAYS after filing).
    due_at = models.DateTimeField()
    task = models.OneToOneField(ReviewTask, on_delete=models.PROTECT, related_name="appeal")
    review_started_at = models.DateTimeField(null=True, blank=True)
    outcome_before = models.CharField(max_length=100)
    outcome_after = models.CharField(max_length=100, blank=True)
    reasons = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "due_at"], name="appeal_status_due_idx"),
            models.Index(fields=["filed_at"], name="appeal_filed_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["upheld", "overturned"], decided_at__isnull=False)
                | ~Q(status__in=["upheld", "overturned"]),
                name="appeal_decided_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"appeal {self.pk} of decision {self.decision_id} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    @property
    def result(self) -> str:
        return self.status if self.status in (self.Status.UPHELD, self.Status.OVERTURNED) else ""
