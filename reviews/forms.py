"""Forms of the reviewer's workspace: the task list's filters. A bad filter is an error shown
beside its field, never dropped: the list is not shown filtered by what was meant."""

from __future__ import annotations

from django import forms

from reviews import queues

KIND_CHOICES = [
    ("", "any kind"),
    ("initial", "first review"),
    ("second_opinion", "second opinion"),
    ("adjudication", "adjudication"),
    ("appeal", "appeal"),
]


class TaskFilterForm(forms.Form):
    find = forms.CharField(
        required=False,
        max_length=200,
        label="Find a case",
        help_text="A decision id (e.g. 32) or the external id the model service sent.",
    )
    model = forms.CharField(required=False, max_length=100, help_text="The model's name.")
    kind = forms.ChoiceField(required=False, choices=KIND_CHOICES)
    state = forms.ChoiceField(
        required=False,
        choices=[("", "waiting or claimed"), ("open", "waiting"), ("claimed", "claimed")],
    )
    reason = forms.ChoiceField(
        required=False,
        choices=[("", "any reason"), *queues.REASON_CHOICES],
        label="Routing reason",
    )
    overdue = forms.ChoiceField(
        required=False,
        choices=[("", "either"), ("yes", "overdue"), ("no", "not overdue")],
        help_text="Past its due time.",
    )

    def filters(self) -> queues.TaskFilters:
        data = self.cleaned_data
        return queues.TaskFilters(
            model=data["model"].strip(),
            kind=data["kind"],
            reason=data["reason"],
            overdue={"yes": True, "no": False}.get(data["overdue"]),
            state=data["state"],
            find=data["find"].strip(),
        )
