from __future__ import annotations

from django import forms

TIME_FORMATS = [
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
]
TIME_HELP = "UTC: a date, or a date and time, e.g. 2026-11-01 or 2026-11-01 14:30."
NOT_A_TIME = {"invalid": "Not a date: write it as 2026-11-01 or 2026-11-01 14:30 (UTC)."}


class EventFilterForm(forms.Form):
    """The events page's filters. Each is checked: a filter that cannot be read is an error
    beside its field, and the page lists nothing until it is fixed (never the unfiltered log)."""

    actor = forms.CharField(
        required=False,
        max_length=200,
        help_text="Part of who acted, e.g. alice (user:alice) or service: for every service.",
    )
    action = forms.CharField(
        required=False,
        max_length=100,
        help_text="What was done, or how it starts: review. or decision.finalized.",
    )
    object_type = forms.CharField(
        required=False, max_length=50, help_text="What it was done to, e.g. decision or export."
    )
    object_id = forms.CharField(
        required=False, max_length=100, help_text="Its id, e.g. a decision's number."
    )
    since = forms.DateTimeField(
        required=False,
        input_formats=TIME_FORMATS,
        label="Since",
        help_text=TIME_HELP,
        error_messages=NOT_A_TIME,
    )
    until = forms.DateTimeField(
        required=False,
        input_formats=TIME_FORMATS,
        label="Until",
        help_text=TIME_HELP,
        error_messages=NOT_A_TIME,
    )

    def clean(self) -> dict:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since >= until:
            self.add_error("until", "must be after since: no event can be in this window")
        return data
