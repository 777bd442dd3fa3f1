from __future__ import annotations

import json

from django import forms

from models_registry.models import RoutingPolicy


class PolicyForm(forms.Form):
    confidence_threshold = forms.FloatField(
        min_value=0, max_value=1, help_text="Route when the model's confidence is below this (0–1)."
    )
    high_stakes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false", "class": "code"}),
        required=False,
        help_text='JSON list of rules: [{"name": "...", "when": {"all": [{"field": "outcome", '
        '"op": "eq", "value": "deny"}]}}]. Operators: eq ne lt le gt ge in; groups: all, any.',
    )
    random_audit_rate = forms.FloatField(min_value=0, max_value=100, help_text="Percent, 0–100.")
    active_learning_budget = forms.IntegerField(min_value=0, help_text="Extra decisions per day.")
    active_learning_max_margin = forms.FloatField(min_value=0, max_value=1)
    reviewers_required = forms.TypedChoiceField(
        choices=[(1, "One reviewer"), (2, "Two independent reviewers + adjudication")], coerce=int
    )
    blind_review = forms.BooleanField(
        required=False, help_text="Hide the model's answer until the reviewer has answered."
    )
    sla_hours = forms.IntegerField(min_value=1, max_value=8760)
    review_all = forms.BooleanField(
        required=False, help_text="Breaker: send every decision to a person."
    )
    retrain_min_new_labels = forms.IntegerField(
        min_value=0,
        required=False,
        help_text="Retrain automatically once this many new human labels have arrived since "
        "the last run (0: only when you ask).",
    )
    appeal_window_days = forms.IntegerField(
        required=False,  # left empty: unchanged
        min_value=1,
        max_value=3650,
        help_text="Days after a decision is final that the person may appeal it.",
    )
    note = forms.CharField(
        required=False, max_length=2000, help_text="Why the change (kept in the audit trail)."
    )

    @classmethod
    def for_policy(cls, policy: RoutingPolicy) -> PolicyForm:
        initial = policy.as_dict()
        initial["high_stakes"] = json.dumps(policy.high_stakes, indent=2)
        return cls(initial=initial)

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
