from __future__ import annotations

from django import forms


class EventFilterForm(forms.Form):
    actor = forms.CharField(required=False, help_text="e.g. user:alice or service:")
    action = forms.CharField(required=False, help_text="e.g. review. or decision.finalized")
    object_type = forms.CharField(required=False)
    object_id = forms.CharField(required=False)
    since = forms.DateTimeField(required=False, help_text="UTC, e.g. 2026-11-01 00:00")
    until = forms.DateTimeField(required=False)
