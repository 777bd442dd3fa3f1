"""Turning a decision into what a person reads: formatted features, reasons in words,
explanation bars, the counterfactual as a sentence."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from reviews import selectors
from reviews.models import Review, ReviewTask

METHODS = {
    "linear_exact": "Exact contributions of each feature to the model's log-odds of {towards}.",
    "replace_with_baseline": "How much the probability of {towards} changes when a feature is "
    "replaced by a typical value (training median or mode).",
    "client": "Explanation sent by the model service.",
}


# What each override reason code means, in words for the person the decision is about
# (their notice quotes it when the reviewer wrote no explanation for them). Codes added with
# REVIEW_REASON_CODES get wording in REVIEW_REASON_PUBLIC_WORDING, or the general sentence.
PUBLIC_REASONS = {
    "model_error": "A person checked your case and found that the automated assessment was "
    "wrong for it.",
    "missing_information": "A person checked your case and took into account information the "
    "automated assessment did not have or could not weigh.",
    "policy_exception": "A person checked your case and applied an exception that our policy "
    "allows.",
    "other": "A person checked your case and reached a different outcome from the automated "
    "assessment.",
}


def public_reason(code: str) -> str:
    wording = {**PUBLIC_REASONS, **settings.REVIEW_REASON_PUBLIC_WORDING}
    return wording.get(code, PUBLIC_REASONS["other"])


def humanize(name: str) -> str:
    return name.replace("_", " ").capitalize()


def value_text(spec: dict | None, value: object) -> str:
    if value is None:
        return "not given"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        text = (
            f"{value:,.2f}".rstrip("0").rstrip(".") if not value.is_integer() else f"{value:,.0f}"
        )
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = str(value).replace("_", " ")
    unit = (spec or {}).get("unit", "")
    return f"{text} {unit}".strip() if unit and unit != "%" else f"{text}{unit}"


def feature_rows(specs: list[dict], features: dict) -> list[dict]:
    features = features if isinstance(features, dict) else {}
    return [
        {
            "name": spec["name"],
            "label": humanize(spec["name"]),
            "value": value_text(spec, features.get(spec["name"])),
            "description": spec.get("description", ""),
            "actionable": spec.get("actionable", False),
        }
        for spec in specs
    ]


# Explanations may come from the model service, and stored ones predate validation: what
# cannot be read is shown as plain text (a string) or counted as unreadable, never a failure.
UNREADABLE = "Part of the {what} sent with this decision could not be read and is not shown."


def _is_number(value: object) -> bool:
    # A comparison, not math.isfinite: that overflows on a huge JSON integer. NaN compares false.
    return isinstance(value, int | float) and not isinstance(value, bool) and abs(value) < 1e300


def _text(value: object) -> str:
    return str(value) if isinstance(value, str | int | float) else ""


def _items(value: object) -> list:
    if isinstance(value, list):
        return value
    return [value] if value not in (None, "", {}) else []


def _is_contribution(item: object) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("feature"), str)
        and _is_number(item.get("contribution"))
    )


def explanation_bars(explanation: object, specs: list[dict]) -> dict:
    if not isinstance(explanation, dict):
        explanation = {"contributions": explanation}  # a bare string is shown as text
    items = _items(explanation.get("contributions"))
    contributions = [c for c in items if _is_contribution(c)]
    notes = [c for c in items if isinstance(c, str) and c.strip()]
    biggest = max((abs(c["contribution"]) for c in contributions), default=0) or 1
    method, towards = _text(explanation.get("method")), _text(explanation.get("towards"))
    return {
        "method": method,
        "method_text": METHODS.get(method, "").format(towards=towards),
        "towards": towards,
        "bars": [_bar(c, specs, biggest) for c in contributions],
        "notes": notes,
        "unreadable": UNREADABLE.format(what="explanation")
        if len(items) > len(contributions) + len(notes)
        else "",
    }


def _bar(c: dict, specs: list[dict], biggest: float) -> dict:
    spec = next((s for s in specs if s["name"] == c["feature"]), None)
    return {
        "label": humanize(c["feature"]),
        "value": value_text(spec, c.get("value")),
        "contribution": c["contribution"],
        "width": round(100 * abs(c["contribution"]) / biggest, 1),
        "direction": "for" if c["contribution"] >= 0 else "against",
    }


def counterfactual_text(counterfactual: object, specs: list[dict]) -> list[str]:
    """The smallest change that flips the outcome, then the alternatives, as sentences."""
    if not counterfactual:
        return []
    alternatives = counterfactual.get("alternatives") if isinstance(counterfactual, dict) else []
    items = [counterfactual, *_items(alternatives)]
    lines = [_counterfactual_line(c, specs) for c in items]
    shown = [line for line in lines if line]
    if len(shown) < len(lines):
        shown.append(UNREADABLE.format(what="counterfactual"))
    return shown


def _counterfactual_line(c: object, specs: list[dict]) -> str | None:
    if isinstance(c, str):
        return c.strip() or None
    if not (isinstance(c, dict) and isinstance(c.get("feature"), str)):
        return None
    if not {"outcome", "from", "to"} <= c.keys():
        return None
    spec = next((s for s in specs if s["name"] == c["feature"]), None)
    return (
        f"The outcome would have been {_text(c['outcome'])} if "
        f"{humanize(c['feature']).lower()} had been {value_text(spec, c['to'])} instead of "
        f"{value_text(spec, c['from'])}."
    )


def reasons_in_words(routing: dict) -> list[str]:
    """Why a person must look at this decision, from the routing record (full or blind)."""
    words = []
    conditions = {c["name"]: c for c in routing.get("conditions", [])}
    for reason in routing.get("reasons", []):
        detail = conditions.get(reason, {})
        if reason == "low_confidence" and "confidence" in detail:
            words.append(
                f"Low confidence: {detail['confidence']:.0%} is below the "
                f"{detail['threshold']:.0%} threshold."
            )
        elif reason == "high_stakes":
            fired = [rule["name"] for rule in detail.get("rules", []) if rule["fired"]]
            fired = fired or routing.get("high_stakes_rules", [])
            words.append("High stakes: " + (", ".join(fired) or "a high-stakes rule") + ".")
        else:
            words.append(
                {
                    "low_confidence": "Low confidence.",
                    "random_audit": "Picked at random for audit (whatever the model said).",
                    "active_learning": "Among the model's most uncertain cases today: your answer "
                    "teaches it.",
                    "review_all": "Every decision is reviewed at the moment (review-all is on).",
                }.get(reason, f"{humanize(str(reason))}.")
            )
    return words


def case_context(task: ReviewTask, viewer: User) -> dict:
    """What the case page shows, all of it read through the viewer's sight of the decision
    (reviews.selectors): the template gets the task and decision as they may see them and the
    history without payloads, never the Decision, the task's model object or audit events."""
    model = task.decision.model
    sight = selectors.task_sight(task, viewer)
    seen = selectors.task_seen(task, viewer, sight=sight)
    decision = seen["decision"]
    reveal = not decision["model_hidden"]
    explanation = decision.get("explanation")
    holder = task.state == ReviewTask.State.CLAIMED and task.assignee_id == viewer.pk
    lease_left = (task.lease_expires_at - timezone.now()).total_seconds() if holder else None
    return {
        "task": {**seen, "kind_display": task.get_kind_display()},
        "decision": decision,
        "reveal": reveal,
        "confidence": _percent(decision["confidence"]) if reveal else None,
        "holder": holder,
        "lease_seconds": max(0, int(lease_left)) if lease_left is not None else None,
        "features": feature_rows(model.features, decision["features"]),
        "reasons": reasons_in_words(decision["routing"]),
        "explanation": explanation_bars(explanation, model.features) if reveal else None,
        "counterfactual": _counterfactual(explanation, model.features) if reveal else [],
        "labels": model.labels,
        "other_labels": [label for label in model.labels if label != decision.get("model_outcome")],
        "reason_codes": settings.REVIEW_REASON_CODES,
        "history": selectors.decision_history(task.decision, sight, task=task),
    }


def _percent(value: float) -> str:
    return f"{value:.1%}".replace(".0%", "%")


def _counterfactual(explanation: object, specs: list[dict]) -> list[str]:
    counterfactual = explanation.get("counterfactual") if isinstance(explanation, dict) else None
    return counterfactual_text(counterfactual, specs)


def after_review_message(review: Review, viewer: User) -> str:
    said = f"Saved. You said {review.outcome}"
    if review.model_hidden:
        # Answered, the reviewer may see the model's answer now: as the selector shows it.
        sight = selectors.task_sight(review.task, viewer)
        seen = selectors.decision_seen(review.decision, sight, task=review.task)
        return f"{said}; the model, hidden from you until now, had said {seen['model_outcome']}."
    return f"{said} ({'agreeing with' if review.agrees_with_model else 'overriding'} the model)."
