from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class MLModel(models.Model):
    """A registered model: its contract (labels, feature schema) and its model card."""

    class Task(models.TextChoices):
        BINARY = "binary_classification"
        MULTICLASS = "multiclass_classification"

    name = models.SlugField(max_length=100, unique=True)
    task = models.CharField(max_length=40, choices=Task.choices, default=Task.BINARY)
    labels = models.JSONField()
    favourable_label = models.CharField(max_length=100)
    # [{"name", "type", "min", "max", "choices", "required", "actionable", "description"}]
    features = models.JSONField()
    protected_attributes = models.JSONField(default=list, blank=True)
    intended_use = models.TextField(blank=True)
    out_of_scope = models.TextField(blank=True)
    limitations = models.TextField(blank=True)
    training_data = models.TextField(blank=True)
    contact = models.TextField(blank=True)
    # The ground of the decisions this model supports (the law, contract or policy relied on),
    # in words for the people they are about: the affected person's notice quotes it.
    notice_ground = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="owned_models",
    )
    # Model services allowed to send decisions for this model and read them back.
    services = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="service_models"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def feature_names(self) -> list[str]:
        return [spec["name"] for spec in self.features]

    def feature(self, name: str) -> dict | None:
        return next((spec for spec in self.features if spec["name"] == name), None)

    @property
    def card(self) -> dict[str, str]:
        return {
            "intended_use": self.intended_use,
            "out_of_scope": self.out_of_scope,
            "limitations": self.limitations,
            "training_data": self.training_data,
            "contact": self.contact,
            "notice_ground": self.notice_ground,
        }


class VersionManager(models.Manager):
    def get_queryset(self) -> models.QuerySet:
        # The artifact (often megabytes) is read only to load the estimator, once per process;
        # every other read of a version leaves it in the database.
        return super().get_queryset().defer("artifact")


class DeferredDataManager(models.Manager):
    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().defer("data")


class ModelVersion(models.Model):
    """A trained artifact of a model, kept as a skops file (never a pickle)."""

    class Status(models.TextChoices):
        CANDIDATE = "candidate"
        CHAMPION = "champion"
        RETIRED = "retired"

    model = models.ForeignKey(MLModel, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CANDIDATE)
    # Kept in the database so that a version and its bytes are stored, or not, together.
    artifact = models.BinaryField()
    sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveBigIntegerField()
    estimator = models.CharField(max_length=200, blank=True)
    # "linear_exact" or "replace_with_baseline": how this version's decisions are explained.
    explainer = models.CharField(max_length=40)
    # Per-feature reference values (training medians / modes) for model-agnostic explanations.
    baseline = models.JSONField(default=dict, blank=True)
    # The training distribution in bins, for drift (PSI): see models_registry.drift_baseline.
    # {} for versions uploaded without one (their drift is reported as "no baseline").
    drift_baseline = models.JSONField(default=dict, blank=True)
    # What the training data covered, per feature: [min, max] of a number, the values seen of
    # a category or boolean. Optional; the affected person's notice flags a counterfactual
    # that lies outside it.
    training_ranges = models.JSONField(default=dict, blank=True)
    # {"overall": {...}, "by_group": {"race": {"black": {...}}}}
    metrics = models.JSONField(default=dict, blank=True)
    label_count = models.PositiveIntegerField(null=True, blank=True)
    # The version this one was retrained from, and how (labels by source, their ids' digest,
    # library versions, training seconds): written by learning's retraining.
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children"
    )
    provenance = models.JSONField(default=dict, blank=True)
    data_window_start = models.DateTimeField(null=True, blank=True)
    data_window_end = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    created_at = models.DateTimeField()
    promoted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    promoted_at = models.DateTimeField(null=True, blank=True)
    # When the promotion gate refused and the owner promoted anyway: the failed checks and the
    # owner's written reason, shown on the model card.
    promotion_justification = models.TextField(blank=True)
    promotion_failed_checks = models.JSONField(default=list, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    objects = VersionManager()

    class Meta:
        ordering = ["model", "-number"]
        base_manager_name = "objects"
        constraints = [
            models.UniqueConstraint(fields=["model", "number"], name="version_number_unique"),
            models.UniqueConstraint(
                fields=["model"], condition=Q(status="champion"), name="one_champion_per_model"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.number} ({self.status})"


class TrainingData(models.Model):
    """A Parquet file uploaded with a version: the data it was trained on ("train") or tested
    on ("test"), one column per schema feature plus `label` (and optional protected-attribute
    columns). Kept in the database beside the artifact, so that retraining on any worker reads
    exactly the bytes whose sha256 was registered, with no shared volume to keep in step."""

    class Split(models.TextChoices):
        TRAIN = "train"
        TEST = "test"

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="datasets")
    split = models.CharField(max_length=5, choices=Split.choices)
    data = models.BinaryField()
    sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveBigIntegerField()
    rows = models.PositiveIntegerField()
    columns = models.JSONField(default=list)
    created_at = models.DateTimeField()

    objects = DeferredDataManager()

    class Meta:
        base_manager_name = "objects"
        constraints = [
            models.UniqueConstraint(fields=["version", "split"], name="one_dataset_per_split"),
        ]

    def __str__(self) -> str:
        return f"{self.version_id} {self.split} data ({self.rows} rows)"


class RoutingPolicy(models.Model):
    """Which decisions a person must look at. Versioned: a change adds a row, never edits one."""

    model = models.ForeignKey(MLModel, on_delete=models.PROTECT, related_name="policies")
    version = models.PositiveIntegerField()
    # Route when the model's confidence is below this (0 routes nothing on confidence).
    confidence_threshold = models.FloatField(default=0.0)
    # [{"name": ..., "when": <condition>}], see models_registry.rules.
    high_stakes = models.JSONField(default=list, blank=True)
    # Percent of decisions sampled for audit, decided per external_id (deterministic).
    random_audit_rate = models.FloatField(default=0.0)
    # Up to this many extra decisions per day, the most uncertain of those not otherwise routed.
    active_learning_budget = models.PositiveIntegerField(default=0)
    # ... among those whose margin (top probability minus runner-up) is at most this.
    active_learning_max_margin = models.FloatField(default=0.2)
    reviewers_required = models.PositiveSmallIntegerField(default=1)
    blind_review = models.BooleanField(default=False)
    sla_hours = models.PositiveIntegerField(default=48)
    review_all = models.BooleanField(default=False)
    # Retrain automatically once this many new human labels have arrived since the last
    # retraining run (0: only when the owner asks).
    retrain_min_new_labels = models.PositiveIntegerField(default=0)
    # The affected person may appeal a final decision for this many days after it became final.
    appeal_window_days = models.PositiveIntegerField(default=180)
    note = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["model", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["model", "version"], name="policy_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.model.name} policy v{self.version}"

    SETTINGS = (
        "confidence_threshold",
        "high_stakes",
        "random_audit_rate",
        "active_learning_budget",
        "active_learning_max_margin",
        "reviewers_required",
        "blind_review",
        "sla_hours",
        "review_all",
        "retrain_min_new_labels",
        "appeal_window_days",
    )

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.SETTINGS}
