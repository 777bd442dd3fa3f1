"""The statement of reasons the person a decision is about receives (EU DSA Art. 17; GDPR
Art. 22): the outcome; whether a model made it alone or a person reviewed it; the main
reasons, in words and with the person's own values; what would change an unfavourable outcome;
the data used; the ground; how and until when to appeal; a contact.

Built from the decision alone, for the person: never their protected attributes (kept apart
from the features), never a reviewer's name, never anyone else's data, never the model's
numbers (log-odds, probabilities, contributions). When a person changed the model's outcome,
the model's reasons for the outcome it no longer has are not given: the reviewer's are."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from appeals import codes
from appeals.models import Appeal, DecisionAccess
from appeals.services.filing import appealability
from models_registry.models import MLModel
from reviews.models import Decision, Review
from reviews.presentation import feature_rows, humanize, public_reason, value_text

TOP_FACTORS = 3
By = Decision.FinalizedBy


def portal_url() -> str:
    return f"{settings.SITE_URL.rstrip('/')}/my-decision/"


def notice_for(decision: Decision, access: DecisionAccess) -> dict:
    """The notice as data: the API returns it, the portal shows it."""
    model = decision.model
    final = decision.status == Decision.Status.FINAL
    appeal = Appeal.objects.filter(decision=decision).first()
    return {
        "reference": codes.show_reference(access.reference),
        "model": model.name,
        "received_at": decision.received_at,
        "status": decision.status,
        "outcome": decision.final_outcome if final else None,
        "favourable": (decision.final_outcome == model.favourable_label) if final else None,
        "how_decided": how_decided(decision),
        "reasons": reasons(decision, appeal),
        "what_would_change": what_would_change(decision),
        "data_used": [
            {k: row[k] for k in ("name", "label", "value", "description")}
            for row in feature_rows(model.features, decision.features)
        ],
        "ground": model.notice_ground or "Not stated by the organisation: ask the contact below.",
        "appeal": appeal_section(decision, appeal),
        "contact": model.contact or "The organisation that sent you this notice.",
    }


# --- how it was decided ----------------------------------------------------------------------


HOW = {
    "pending": "A person is reviewing this decision: it has no final outcome yet. An automated "
    "system (a model) made a first assessment.",
    "model": "Made by automated means alone: a model decided, and no person reviewed it. You "
    "can ask for a person to look at it by appealing.",
    "appeal": "Changed on appeal by a senior reviewer who took no part in the original "
    "decision. A model had made the first assessment.",
    "person_confirmed": "A model made the first assessment; a person reviewed it and "
    "confirmed the outcome.",
    "person_changed": "A model made the first assessment; a person reviewed it and changed "
    "the outcome.",
}


def how_decided(decision: Decision) -> dict:
    """Whether automated means were used, and whether a person reviewed or changed it."""
    if decision.status != Decision.Status.FINAL:
        kind = "pending"
    elif decision.finalized_by in (By.MODEL, By.APPEAL):
        kind = decision.finalized_by
    elif decision.final_outcome == decision.model_outcome:
        kind = "person_confirmed"
    else:
        kind = "person_changed"
    return {
        "kind": kind,
        "automated": True,
        "reviewed_by_a_person": kind not in ("pending", "model"),
        "text": HOW[kind],
    }


# --- the reasons ---------------------------------------------------------------------------


def reasons(decision: Decision, appeal: Appeal | None) -> dict:
    """The reasons for the outcome the decision has: an appeal's when an appeal set it; the
    model's (its top factors) when the outcome is the model's; otherwise the reviewer's, and
    then never the model's."""
    if decision.status != Decision.Status.FINAL:
        return {"source": "none", "text": "Reasons are given once it is final.", "factors": []}
    if decision.finalized_by == By.APPEAL and appeal is not None:
        return {"source": "appeal", "text": appeal.reasons, "factors": []}
    if decision.final_outcome == decision.model_outcome:
        return _model_reasons(decision)
    return {"source": "reviewer", "text": _reviewer_words(decision), "factors": []}


def _reviewer_words(decision: Decision) -> str:
    """The settling reviewer's words for the person, or their reason code's public wording."""
    settling = Review.objects.filter(
        decision=decision, is_gold=False, outcome=decision.final_outcome
    ).order_by("-created_at")
    review = settling.filter(reviewer_id=decision.finalized_by_user_id).first() or settling.first()
    if review is None:
        return public_reason("other")
    return review.explanation_for_person or public_reason(review.reason_code)


def _supports(contribution: float, outcome: str, towards: str) -> bool:
    """Whether a contribution pushed towards `outcome`. Contributions point towards the
    explanation's `towards` label (the favourable one of a binary model)."""
    sign = 1 if outcome == towards else -1
    return contribution * sign > 0


def _model_reasons(decision: Decision) -> dict:
    explanation = decision.explanation if isinstance(decision.explanation, dict) else {}
    outcome, model = decision.final_outcome, decision.model
    towards = explanation.get("towards") or model.favourable_label
    specs = {spec["name"]: spec for spec in model.features}
    factors = []
    for item in explanation.get("contributions") or []:
        if not _is_contribution(item) or item["feature"] not in specs:
            continue
        if _supports(item["contribution"], outcome, towards):
            spec = specs[item["feature"]]
            value = decision.features.get(item["feature"])
            label = humanize(spec["name"])
            factors.append(
                {"feature": spec["name"], "label": label, "value": value_text(spec, value)}
            )
        if len(factors) == TOP_FACTORS:
            break
    if not factors:
        return {"source": "model", "factors": [], "text": NO_FACTORS}
    text = f"What weighed most towards {outcome}, with your values (most first):"
    return {"source": "model", "text": text, "factors": factors}


NO_FACTORS = (
    "The model did not give the reasons for this outcome in a form we can show. Ask the "
    "contact below for them."
)


def _is_contribution(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("feature"), str)
        and isinstance(item.get("contribution"), int | float)
        and not isinstance(item.get("contribution"), bool)
    )


# --- what would change it --------------------------------------------------------------------


def what_would_change(decision: Decision) -> list[dict]:
    """For an unfavourable outcome that is the model's: the smallest change to something the
    person can change that would change it, then the alternatives; each flagged when the new
    value lies outside the data the model was trained on. Empty otherwise: a person's outcome
    is not the model's to explain."""
    model = decision.model
    if decision.status != Decision.Status.FINAL or decision.final_outcome == model.favourable_label:
        return []
    if decision.final_outcome != decision.model_outcome or decision.finalized_by == By.APPEAL:
        return []  # a person's outcome: not the model's to explain
    explanation = decision.explanation if isinstance(decision.explanation, dict) else {}
    counterfactual = explanation.get("counterfactual")
    if not isinstance(counterfactual, dict):
        return []
    alternatives = counterfactual.get("alternatives")
    items = [counterfactual, *(alternatives if isinstance(alternatives, list) else [])]
    ranges = decision.model_version.training_ranges if decision.model_version else {}
    lines = [_change(item, model, ranges) for item in items]
    return [line for line in lines if line]


def _change(item: Any, model: MLModel, ranges: dict) -> dict | None:
    if not isinstance(item, dict) or not {"feature", "from", "to", "outcome"} <= item.keys():
        return None
    spec = model.feature(item["feature"]) if isinstance(item["feature"], str) else None
    if spec is None or not spec.get("actionable"):
        return None
    outside, seen = _outside_training(spec, item["to"], ranges.get(spec["name"]))
    text = (
        f"If your {humanize(spec['name']).lower()} had been {value_text(spec, item['to'])} "
        f"instead of {value_text(spec, item['from'])}, the outcome would have been "
        f"{item['outcome']}."
    )
    return {
        "feature": spec["name"],
        "text": text,
        "outside_training_data": outside,
        "training_data": seen,
    }


def _outside_training(spec: dict, value: Any, seen: Any) -> tuple[bool, str]:
    """(whether the value lies outside what the model was trained on, that range in words).
    From the version's recorded training ranges; without them, the schema's range."""
    numeric = spec["type"] in ("number", "integer")
    if seen:
        if numeric:
            lo, hi = seen
            words = f"{value_text(spec, lo)} to {value_text(spec, hi)}"
            return not (lo <= value <= hi), words
        return value not in seen, ", ".join(value_text(spec, v) for v in seen)
    if numeric:
        lo, hi = spec.get("min"), spec.get("max")
        outside = (lo is not None and value < lo) or (hi is not None and value > hi)
        return bool(outside), ""
    return False, ""


# --- appealing -------------------------------------------------------------------------------


def appeal_section(decision: Decision, appeal: Appeal | None) -> dict:
    """How and until when to appeal; or the appeal's progress and result."""
    how = (
        f'Sign in at {portal_url()} with your reference and access code and choose "Appeal". '
        "Say why the decision is wrong, correct any facts that are wrong, and add a document "
        "if it helps. A senior reviewer who took no part in the decision will answer within "
        f"{settings.APPEAL_SLA_DAYS} days."
    )
    section: dict[str, Any] = {
        "how": how,
        "portal_url": portal_url(),
        "sla_days": settings.APPEAL_SLA_DAYS,
    }
    if appeal is not None:
        section.update(can_appeal=False, until=None, message="", filed=appeal_status(appeal))
        return section
    why = appealability(decision)
    section.update(can_appeal=why.allowed, until=why.until, message=why.message, filed=None)
    if why.come_back:
        section["come_back"] = why.come_back
    return section


def appeal_status(appeal: Appeal) -> dict:
    """The appeal as the person follows it: dates, the deadline, and once decided, the result
    and the reasons (never who decided)."""
    decided = appeal.status in (Appeal.Status.UPHELD, Appeal.Status.OVERTURNED)
    return {
        "status": appeal.status,
        "status_text": STATUS_TEXT[appeal.status],
        "filed_at": appeal.filed_at,
        "due_at": appeal.due_at,
        "review_started_at": appeal.review_started_at,
        "decided_at": appeal.decided_at,
        "withdrawn_at": appeal.withdrawn_at,
        "result": appeal.status if decided else None,
        "outcome_before": appeal.outcome_before,
        "outcome_after": appeal.outcome_after or None,
        "reasons": appeal.reasons if decided else None,
        "corrected_features": sorted(appeal.corrections),
        "attachment_given": bool(appeal.attachment_path),
    }


STATUS_TEXT = {
    Appeal.Status.SUBMITTED: "Received: waiting for a senior reviewer.",
    Appeal.Status.IN_REVIEW: "A senior reviewer is looking at your appeal.",
    Appeal.Status.UPHELD: "Decided: the decision stands.",
    Appeal.Status.OVERTURNED: "Decided: your appeal succeeded and the decision was changed.",
    Appeal.Status.WITHDRAWN: "Withdrawn at your request.",
}
