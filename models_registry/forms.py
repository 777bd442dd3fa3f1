from __future__ import annotations

import json

from django import forms

from models_registry.models import RoutingPolicy

# How many of the latest decisions a policy preview ("what if") evaluates the draft on.
WHAT_IF_WINDOWS = (100, 500, 1000, 5000)
WHAT_IF_DEFAULT = 500


class PolicyForm(forms.Form):
    confidence_threshold = forms.FloatField(
        label="Confidence threshold",
        min_value=0,
        max_value=1,
        help_text="A person reviews decisions whose confidence is below this (0 to 1).",
    )
    high_stakes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false", "class": "code"}),
        required=False,
        label="High-stakes rules (JSON)",
        help_text='A list of rules: [{"name": "...", "when": {"all": [{"field": "outcome", '
        '"op": "eq", "value": "deny"}]}}]. Operators: eq ne lt le gt ge in; groups: all, any. '
        "Preview the change below before saving it.",
    )
    random_audit_rate = forms.FloatField(
        label="Random audit rate (%)",
        min_value=0,
        max_value=100,
        help_text="The share of decisions picked at random for review, 0 to 100.",
    )
    active_learning_budget = forms.IntegerField(
        label="Active-learning budget (per day)",
        min_value=0,
        help_text="Extra uncertain decisions a day sent to people to teach the model.",
    )
    active_learning_max_margin = forms.FloatField(
        label="Active learning: largest margin",
        min_value=0,
        max_value=1,
        help_text="Only decisions at most this far from a tie (0 to 1) count as uncertain.",
    )
    reviewers_required = forms.TypedChoiceField(
        label="Reviewers per case",
        choices=[(1, "One reviewer"), (2, "Two independent reviewers + adjudication")],
        coerce=int,
    )
    blind_review = forms.BooleanField(
        label="Blind review",
        required=False,
        help_text="Hide the model's answer until the reviewer has answered.",
    )
    sla_hours = forms.IntegerField(
        label="Reviews due within (hours)",
        min_value=1,
        max_value=8760,
        help_text="The service-level agreement: how long a review may wait.",
    )
    review_all = forms.BooleanField(
        label="Review every decision",
        required=False,
        help_text="The breaker: send every decision to a person.",
    )
    retrain_min_new_labels = forms.IntegerField(
        label="Retrain after new labels",
        min_value=0,
        required=False,
        help_text="Retrain automatically once this many new human labels have arrived since "
        "the last run (0: only when you ask).",
    )
    appeal_window_days = forms.IntegerField(
        label="Appeal window (days)",
        required=False,  # left empty: unchanged
        min_value=1,
        max_value=3650,
        help_text="Days after a decision is final that the person may appeal it.",
    )
    note = forms.CharField(
        label="Why this change",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required: kept in the audit trail with the change.",
    )

    @classmethod
    def for_policy(cls, policy: RoutingPolicy) -> PolicyForm:
        initial = policy.as_dict()
        initial["high_stakes"] = json.dumps(policy.high_stakes, indent=2)
        return cls(initial=initial)

    def changes(self) -> dict:
        """The settings given (an optional field left empty keeps its value), without the note."""
        return {k: v for k, v in self.cleaned_data.items() if v is not None and k != "note"}

    def clean(self) -> dict:
        data = super().clean()
        if data.get("retrain_min_new_labels") is None:
            data.pop("retrain_min_new_labels", None)  # left out: unchanged
        return data

    def clean_high_stakes(self) -> list:
        text = self.cleaned_data["high_stakes"].strip() or "[]"
        try:
            return json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"This is not valid JSON: {exc}") from None


class VersionUploadForm(forms.Form):
    """A new version, as the API takes it (POST /api/v1/models/{name}/versions/): the artifact,
    and what goes with it."""

    artifact = forms.FileField(
        label="Model artifact (skops)",
        help_text="A skops file of a fitted scikit-learn classifier with predict_proba.",
    )
    metrics = forms.CharField(
        required=False,
        label="Evaluation metrics (JSON)",
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "class": "code"}),
        help_text='{"overall": {"accuracy": 0.91}, "by_group": {"sex": {"female": {...}}}}',
    )
    baseline = forms.CharField(
        required=False,
        label="Reference values (JSON)",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "class": "code"}),
        help_text="The typical value of each feature (training median or mode), used to "
        "explain decisions; the schema's midpoints when left empty.",
    )
    drift_baseline = forms.CharField(
        required=False,
        label="Drift baseline (JSON)",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "class": "code"}),
        help_text="The training distribution in bins, for drift reports (optional).",
    )
    training_ranges = forms.CharField(
        required=False,
        label="Training ranges (JSON)",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "class": "code"}),
        help_text='What the training data covered: {"income": [0, 220], "history": ["good"]}; '
        "counterfactuals outside it are flagged.",
    )
    training_data = forms.FileField(
        required=False,
        label="Training data (Parquet)",
        help_text="One column per feature and `label`: lets Oversight retrain this version.",
    )
    test_data = forms.FileField(
        required=False, label="Test data (Parquet)", help_text="Same columns: a test split."
    )
    label_count = forms.IntegerField(
        required=False, min_value=0, label="Training labels", help_text="How many rows it saw."
    )
    notes = forms.CharField(
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What this version is, for the model card.",
    )

    JSON_FIELDS = ("metrics", "baseline", "drift_baseline", "training_ranges")

    def _json(self, name: str):
        text = self.cleaned_data[name].strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise forms.ValidationError(f"This is not valid JSON: {exc}") from None

    def clean_metrics(self):
        return self._json("metrics")

    def clean_baseline(self):
        return self._json("baseline")

    def clean_drift_baseline(self):
        return self._json("drift_baseline")

    def clean_training_ranges(self):
        return self._json("training_ranges")

    def upload(self) -> dict:
        """The arguments of services.version_upload, files read."""
        data = self.cleaned_data
        files = {
            key: data[key].read() if data.get(key) else None
            for key in ("artifact", "training_data", "test_data")
        }
        return {
            **files,
            **{key: data[key] for key in self.JSON_FIELDS},
            "label_count": data["label_count"],
            "notes": data["notes"],
        }


class ServiceGrantForm(forms.Form):
    service = forms.CharField(
        max_length=150,
        label="Service",
        help_text="The service's user name (svc-NAME, as create_service_token made it).",
    )
