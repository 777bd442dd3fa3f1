from __future__ import annotations

from django import forms


class WebhookForm(forms.Form):
    url = forms.CharField(
        label="URL", max_length=500, help_text="Where batches of labels are POSTed as JSON."
    )
    secret = forms.CharField(
        min_length=16,
        max_length=500,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="At least 16 characters. It signs every batch; it is stored encrypted and "
        "never shown again.",
    )


class PromoteForm(forms.Form):
    justification = forms.CharField(
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Why promote despite the failed checks (at least 20 characters). It is kept "
        "in the audit trail and shown on the model card.",
    )
