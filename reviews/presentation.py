"""Turning a decision into what a person reads: formatted features, reasons in words,
explanation bars, the counterfactual as a sentence."""

from __future__ import annotations

import math

from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from core import roles as r
from reviews import selectors
from reviews.models import Review, ReviewTask

METHODS = {
    "linear_exact": "Each feature's effect on the probability of {towards}, in percentage "
    "points: how far the probability would move if the feature were at its training average "
    "(exact, from the model's log-odds, which are in small print).",
    "replace_with_baseline": "How much the probability of {towards} changes, in percentage "
    "points, when a feature is replaced by a typical value (training median or mode).",
    "client": "Explanation sent by the model service, in its own units.",
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


# What each override reason code means, for reviewers and auditors (the queue, the forms, the
# adjudication page): codes added with REVIEW_REASON_CODES get REVIEW_REASON_LABELS, or their
# name in words.
REASON_LABELS = {
    "model_error": "The model got this case wrong",
    "missing_information": "Information the model did not have",
    "policy_exception": "An exception the policy allows",
    "other": "Another reason",
}


def reason_label(code: str) -> str:
    if not code:
        return ""
    labels = {**REASON_LABELS, **settings.REVIEW_REASON_LABELS}
    return labels.get(code, humanize(code))


def reason_choices() -> list[tuple[str, str]]:
    """(code, label) of every reason code, in the configured order."""
    return [(code, reason_label(code)) for code in settings.REVIEW_REASON_CODES]


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
    """The contributions as bars, each with its effect in percentage points of the probability
    of `towards` where the method allows it (a reviewer reads "+9.8 points", not a log-odds
    term), the number as stored beside it."""
    if not isinstance(explanation, dict):
        explanation = {"contributions": explanation}  # a bare string is shown as text
    items = _items(explanation.get("contributions"))
    contributions = [c for c in items if _is_contribution(c)]
    notes = [c for c in items if isinstance(c, str) and c.strip()]
    method, towards = _text(explanation.get("method")), _text(explanation.get("towards"))
    points = _points_of(method, explanation)
    effects = [points(c["contribution"]) for c in contributions]
    sizes = [
        abs(e if e is not None else c["contribution"])
        for e, c in zip(effects, contributions, strict=True)
    ]
    biggest = max(sizes, default=0) or 1
    return {
        "method": method,
        "method_text": METHODS.get(method, "").format(towards=towards),
        "towards": towards,
        "in_points": any(e is not None for e in effects),
        "bars": [
            _bar(c, specs, size / biggest, effect)
            for c, size, effect in zip(contributions, sizes, effects, strict=True)
        ],
        "notes": notes,
        "unreadable": UNREADABLE.format(what="explanation")
        if len(items) > len(contributions) + len(notes)
        else "",
    }


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-max(-700.0, min(700.0, x))))


def _points_of(method: str, explanation: dict):
    """How a contribution becomes percentage points of probability, or None when it cannot:
    exact log-odds terms move the probability from where it is (log_odds) to where it would be
    without them; replace-with-baseline contributions are probability changes already."""
    if method == "linear_exact" and _is_number(explanation.get("log_odds")):
        logit = float(explanation["log_odds"])
        return lambda c: 100 * (_sigmoid(logit) - _sigmoid(logit - c))
    if method == "replace_with_baseline":
        return lambda c: 100 * c
    return lambda c: None


def _bar(c: dict, specs: list[dict], share: float, points: float | None) -> dict:
    spec = next((s for s in specs if s["name"] == c["feature"]), None)
    return {
        "label": humanize(c["feature"]),
        "value": value_text(spec, c.get("value")),
        "contribution": c["contribution"],
        "points": points,
        "points_text": f"{points:+.1f} pts" if points is not None else "",
        "width": round(100 * share, 1),
        "direction": "for" if c["contribution"] >= 0 else "against",
    }


def counterfactual_text(counterfactual: object, specs: list[dict]) -> list[str]:
    """The smallest change that flips the outcome, then the alternatives, as sentences."""
    return [line["text"] for line in counterfactual_lines(counterfactual, specs)]


def counterfactual_lines(
    counterfactual: object, specs: list[dict], ranges: dict | None = None
) -> list[dict]:
    """counterfactual_text as {text, outside, seen}: `outside` when the new value lies outside
    what the model was trained on (the version's training_ranges; without them the schema's
    range), `seen` that range in words."""
    if not counterfactual:
        return []
    alternatives = counterfactual.get("alternatives") if isinstance(counterfactual, dict) else []
    items = [counterfactual, *_items(alternatives)]
    lines = [_counterfactual_line(c, specs, ranges or {}) for c in items]
    shown = [line for line in lines if line]
    if len(shown) < len(lines):
        shown.append({"text": UNREADABLE.format(what="counterfactual"), "outside": False})
    return shown


def _counterfactual_line(c: object, specs: list[dict], ranges: dict) -> dict | None:
    if isinstance(c, str):
        return {"text": c.strip(), "outside": False} if c.strip() else None
    if not (isinstance(c, dict) and isinstance(c.get("feature"), str)):
        return None
    if not {"outcome", "from", "to"} <= c.keys():
        return None
    spec = next((s for s in specs if s["name"] == c["feature"]), None)
    text = (
        f"The outcome would have been {_text(c['outcome'])} if "
        f"{humanize(c['feature']).lower()} had been {value_text(spec, c['to'])} instead of "
        f"{value_text(spec, c['from'])}."
    )
    outside, seen = outside_training(spec, c["to"], ranges.get(c["feature"]))
    return {"text": text, "outside": outside, "seen": seen}


def outside_training(spec: dict | None, value: object, seen: object) -> tuple[bool, str]:
    """(whether the value lies outside what the model was trained on, that range in words)."""
    if spec is None:
        return False, ""
    numeric = spec["type"] in ("number", "integer")
    if numeric and not _is_number(value):
        return False, ""
    if isinstance(seen, list) and seen:
        if numeric and len(seen) == 2 and all(_is_number(v) for v in seen):
            lo, hi = seen
            return not (lo <= value <= hi), f"{value_text(spec, lo)} to {value_text(spec, hi)}"
        if not numeric:
            return value not in seen, ", ".join(value_text(spec, v) for v in seen)
    if numeric:
        lo, hi = spec.get("min"), spec.get("max")
        outside = (lo is not None and value < lo) or (hi is not None and value > hi)
        return bool(outside), ""
    return False, ""


# --- why a person looks at it ------------------------------------------------------------------

_OP_WORDS = {
    "eq": "is",
    "ne": "is not",
    "lt": "is below",
    "le": "is at most",
    "gt": "is above",
    "ge": "is at least",
    "in": "is one of",
}


def _field_words(field: str, specs: list[dict]) -> tuple[str, dict | None]:
    if field == "outcome":
        return "the model's outcome", None
    if field == "confidence":
        return "the model's confidence", {"type": "number", "unit": "%"}
    spec = next((s for s in specs if s["name"] == field), None)
    return humanize(field).lower(), spec


def _shown_value(field: str, spec: dict | None, value: object) -> str:
    if isinstance(value, list):
        return ", ".join(_shown_value(field, spec, v) for v in value)
    if field == "confidence" and _is_number(value):
        return _percent(float(value))
    return value_text(spec, value)


def condition_words(cond: object, specs: list[dict]) -> str:
    """A high-stakes rule's condition in a reviewer's words: "public record is yes"."""
    if not isinstance(cond, dict):
        return ""
    for key, joiner in (("all", " and "), ("any", " or ")):
        if key in cond and isinstance(cond[key], list):
            parts = [condition_words(part, specs) for part in cond[key]]
            return joiner.join(part for part in parts if part)
    if not {"field", "op", "value"} <= cond.keys() or cond["op"] not in _OP_WORDS:
        return ""
    name, spec = _field_words(str(cond["field"]), specs)
    return f"{name} {_OP_WORDS[cond['op']]} {_shown_value(cond['field'], spec, cond['value'])}"


def _fired_words(rule: dict, specs: list[dict]) -> str:
    """What made a rule fire, from its trace: the comparisons that held, with the values."""
    held = [c for c in rule.get("conditions", []) if isinstance(c, dict) and c.get("result")]
    parts = []
    for c in held:
        name, spec = _field_words(str(c.get("field")), specs)
        actual = _shown_value(c.get("field"), spec, c.get("actual"))
        if c.get("op") in ("eq", "ne") or c.get("op") not in _OP_WORDS:
            parts.append(f"{name} is {actual}")
        else:
            limit = _shown_value(c.get("field"), spec, c.get("value"))
            parts.append(f"{name} is {actual} ({_OP_WORDS[c['op']].removeprefix('is ')} {limit})")
    return " and ".join(parts)


def reasons_in_words(
    routing: dict, specs: list[dict] | None = None, rules: dict[str, object] | None = None
) -> list[str]:
    """Why a person must look at this decision, from the routing record (full or blind): each
    reason, and for high stakes the condition that fired in words ("public record is yes").
    `rules` maps rule names to their conditions (the policy's), for a blind record, which
    names the rules only."""
    specs, rules = specs or [], rules or {}
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
            words += _high_stakes_words(routing, detail, specs, rules)
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


def _high_stakes_words(
    routing: dict, detail: dict, specs: list[dict], rules: dict[str, object]
) -> list[str]:
    fired = [rule for rule in detail.get("rules", []) if rule.get("fired")]
    if fired:
        lines = [(rule["name"], _fired_words(rule, specs)) for rule in fired]
    else:
        names = routing.get("high_stakes_rules", [])
        lines = [(name, condition_words(rules.get(name), specs)) for name in names]
    if not lines:
        return ["High stakes: a high-stakes rule."]
    return [f"High stakes: {name}" + (f" ({words})." if words else ".") for name, words in lines]


# --- the case page ------------------------------------------------------------------------------


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
    adjudication = task.kind == ReviewTask.Kind.ADJUDICATION
    ranges = task.decision.model_version.training_ranges if task.decision.model_version else {}
    return {
        "task": {**seen, "kind_display": KIND_WORDS.get(task.kind, task.get_kind_display())},
        "decision": decision,
        "reveal": reveal,
        "confidence": _percent(decision["confidence"]) if reveal else None,
        "holder": holder,
        "lease_seconds": max(0, int(lease_left)) if lease_left is not None else None,
        "features": feature_rows(model.features, decision["features"]),
        "reasons": reasons_in_words(
            decision["routing"], model.features, _rules_of(task) if not reveal else None
        ),
        "explanation": explanation_bars(explanation, model.features) if reveal else None,
        "counterfactual": _counterfactual(explanation, model.features, ranges) if reveal else [],
        "labels": model.labels,
        "other_labels": [label for label in model.labels if label != decision.get("model_outcome")],
        "reason_codes": reason_choices(),
        "adjudication": adjudication,
        "answers": _answers(task, viewer, sight) if adjudication else [],
        "may_escalate": not r.has_role(viewer, r.SENIOR_REVIEWER) and not adjudication,
        "works_queue": r.has_role(viewer, r.REVIEWER),
        "history": selectors.decision_history(task.decision, sight, task=task),
    }


KIND_WORDS = {
    "initial": "first review",
    "second_opinion": "second opinion",
    "adjudication": "adjudication",
    "appeal": "appeal",
}


def _rules_of(task: ReviewTask) -> dict[str, object]:
    """The conditions of the rules in the policy the decision was routed under, by name (a
    blind record names the rules that fired, and rules on the answer are never among them)."""
    decision = task.decision
    policy = decision.model.policies.filter(version=decision.policy_version).first()
    if policy is None:
        return {}
    return {rule["name"]: rule.get("when") for rule in policy.high_stakes}


def _answers(task: ReviewTask, viewer: User, sight: selectors.Sight) -> list[dict]:
    """The answers a senior settles between, in words."""
    rows = selectors.answers_seen(task.decision, viewer, sight, copies=task.is_gold)
    for row in rows:
        row["reason_label"] = reason_label(row.get("reason_code", ""))
        row["kind_display"] = KIND_WORDS.get(row["kind"], row["kind"])
    return rows


def _percent(value: float) -> str:
    return f"{value:.1%}".replace(".0%", "%")


def _counterfactual(explanation: object, specs: list[dict], ranges: dict) -> list[dict]:
    counterfactual = explanation.get("counterfactual") if isinstance(explanation, dict) else None
    return counterfactual_lines(counterfactual, specs, ranges)


def after_review_message(review: Review, viewer: User) -> str:
    said = f"Saved. You said {review.outcome}"
    if review.kind == ReviewTask.Kind.ADJUDICATION:
        return f"Saved. You decided {review.outcome}: the decision is settled."
    if review.model_hidden:
        # Answered, the reviewer may see the model's answer now: as the selector shows it.
        sight = selectors.task_sight(review.task, viewer)
        seen = selectors.decision_seen(review.decision, sight, task=review.task)
        return f"{said}; the model, hidden from you until now, had said {seen['model_outcome']}."
    return f"{said} ({'agreeing with' if review.agrees_with_model else 'overriding'} the model)."
