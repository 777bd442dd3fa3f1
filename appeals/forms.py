"""The portal's forms: signing in, and the appeal (grounds, corrections per feature, a contact
address and a document). Values are checked by the services; these only read them."""

from __future__ import annotations

from django import forms

from reviews.models import Decision
from reviews.presentation import humanize, value_text

NO_CHANGE = ""
CODE_INPUT = {"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}


class SignInForm(forms.Form):
    reference = forms.CharField(
        max_length=40,
        label="Reference",
        help_text="On your letter or message, for example ABC-DEF-GHJ.",
        widget=forms.TextInput(attrs=CODE_INPUT),
    )
    access_code = forms.CharField(
        max_length=60,
        label="Access code",
        help_text="Given to you with the reference, for example ABCD-EFGH-JKMN.",
        widget=forms.PasswordInput(attrs=CODE_INPUT),
    )


def correction_field(spec: dict, current: object) -> forms.Field:
    label = f"{humanize(spec['name'])} (we have: {value_text(spec, current)})"
    help_text = spec.get("description", "")
    if spec["type"] == "boolean":
        choices = [(NO_CHANGE, "No change"), ("true", "Yes"), ("false", "No")]
        return forms.ChoiceField(choices=choices, required=False, label=label, help_text=help_text)
    if spec["type"] == "category":
        choices = [(NO_CHANGE, "No change")] + [(c, humanize(c)) for c in spec["choices"]]
        return forms.ChoiceField(choices=choices, required=False, label=label, help_text=help_text)
    mode = "numeric" if spec["type"] == "integer" else "decimal"
    widget = forms.TextInput(attrs={"inputmode": mode, "autocomplete": "off"})
    unit = f" In {spec['unit']}." if spec.get("unit") and spec["unit"] != "%" else ""
    return forms.CharField(
        required=False, label=label, help_text=f"{help_text}{unit}".strip(), widget=widget
    )


class AppealForm(forms.Form):
    grounds = forms.CharField(
        label="Why is the decision wrong?",
        help_text="In your own words, 20 to 5,000 characters.",
        widget=forms.Textarea(attrs={"rows": 7, "maxlength": 5000}),
    )
    contact_email = forms.CharField(
        required=False,
        max_length=254,
        label="Your e-mail address (optional)",
        help_text="We write to you when we receive your appeal and when it is decided.",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    attachment = forms.FileField(
        required=False,
        label="A document (optional)",
        help_text="A PDF, PNG or JPEG file of at most 5 MB.",
        widget=forms.ClearableFileInput(attrs={"accept": ".pdf,.png,.jpg,.jpeg"}),
    )

    def __init__(self, *args, decision: Decision, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.specs = decision.model.features
        for spec in self.specs:
            current = decision.features.get(spec["name"])
            self.fields[self.correction_name(spec["name"])] = correction_field(spec, current)

    @staticmethod
    def correction_name(feature: str) -> str:
        return f"correct_{feature}"

    def correction_fields(self) -> list:
        return [self[self.correction_name(spec["name"])] for spec in self.specs]

    def corrections(self) -> dict:
        """{feature: value} of the corrections given, as the schema's types where they read
        as such (anything else is passed on for the service to name the field)."""
        given = {}
        for spec in self.specs:
            raw = (self.cleaned_data.get(self.correction_name(spec["name"])) or "").strip()
            if raw:
                given[spec["name"]] = _typed(spec, raw)
        return given

    def add_service_errors(self, fields: dict[str, list[str]]) -> None:
        for key, messages in fields.items():
            name = key.split(".", 1)
            field = self.correction_name(name[1]) if name[0] == "corrections" else name[0]
            self.add_error(field if field in self.fields else None, messages)


def _typed(spec: dict, raw: str) -> object:
    if spec["type"] == "boolean":
        return raw == "true"
    if spec["type"] == "category":
        return raw
    try:
        number = float(raw.replace(",", "").replace(" ", ""))
    except ValueError:
        return raw
    return int(number) if spec["type"] == "integer" and number.is_integer() else number
