from __future__ import annotations

from datetime import UTC

from django import forms
from django.utils.dateparse import parse_datetime

from reviews.models import REASONS, Decision


class ExportForm(forms.Form):
    format = forms.ChoiceField(
        choices=[("csv", "CSV"), ("jsonl", "JSON Lines"), ("parquet", "Parquet")]
    )
    since = forms.DateTimeField(required=False, help_text="received at or after (UTC)")
    until = forms.DateTimeField(required=False, help_text="received before (UTC)")
    model = forms.CharField(required=False)
    version = forms.IntegerField(required=False, min_value=1)
    status = forms.ChoiceField(required=False, choices=[("", "any"), *Decision.Status.choices])
    routed = forms.ChoiceField(
        required=False, choices=[("", "routed or not"), ("true", "routed"), ("false", "not routed")]
    )
    reason = forms.ChoiceField(required=False, choices=[("", "any"), *[(r, r) for r in REASONS]])
    groups = forms.CharField(
        required=False, help_text="protected attribute values, e.g. race=black, sex=female"
    )
    pseudonymise = forms.BooleanField(
        required=False, help_text="replace subject refs by a keyed hash"
    )
    include_bundle = forms.BooleanField(
        required=False,
        help_text="add the audit bundle for offline checks (the raw log: not pseudonymised)",
    )

    def clean_groups(self) -> dict:
        text = self.cleaned_data["groups"].strip()
        groups = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, value = part.partition("=")
            if not sep or not name.strip() or not value.strip():
                raise forms.ValidationError(f"{part!r} is not attribute=value")
            groups[name.strip()] = value.strip()
        return groups

    def request_data(self) -> dict:
        data = self.cleaned_data
        filters = {
            "since": data["since"].isoformat() if data["since"] else None,
            "until": data["until"].isoformat() if data["until"] else None,
            "model": data["model"] or None,
            "version": data["version"],
            "status": data["status"] or None,
            "routed": {"true": True, "false": False}.get(data["routed"]),
            "reason": data["reason"] or None,
            "groups": data["groups"] or None,
        }
        return {
            "format": data["format"],
            "filters": {k: v for k, v in filters.items() if v is not None},
            "pseudonymise": data["pseudonymise"],
            "include_bundle": data["include_bundle"],
        }


FILTER_WORDS = {
    "since": "received from",
    "until": "received before",
    "model": "model",
    "version": "version",
    "status": "status",
    "routed": "routed",
    "reason": "reason",
}


def describe_filters(filters: dict) -> str:
    """An export's filters as a person reads them: "model mortgage-approval · race = black"."""
    if not filters:
        return "every decision"
    parts = []
    for key, words in FILTER_WORDS.items():
        if key not in filters:
            continue
        value = filters[key]
        if key in ("since", "until"):
            moment = parse_datetime(str(value))
            value = f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if moment else value
        elif key == "routed":
            value = "yes" if value else "no"
        elif key == "reason":
            value = str(value).replace("_", " ")
        parts.append(f"{words} {value}")
    parts += [f"{name} = {value}" for name, value in sorted(filters.get("groups", {}).items())]
    return " · ".join(parts)
