"""Read paths of the registry: who sees which model, and the model card."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.template.loader import render_to_string

from core import roles as r
from models_registry.models import MLModel, RoutingPolicy
from models_registry.rules import describe_condition


def current_policy(model: MLModel) -> RoutingPolicy:
    return model.policies.order_by("-version").first()


def models_visible_to(user: User) -> QuerySet[MLModel]:
    """Model cards are for everyone who works here; a model service sees its own models."""
    if r.has_role(user, *r.STAFF_ROLES):
        return MLModel.objects.all()
    if r.has_role(user, r.MODEL_SERVICE):
        return MLModel.objects.filter(services=user)
    return MLModel.objects.none()


def _percent(value: float) -> str:
    return f"{value * 100:g}%"


def policy_in_words(policy: RoutingPolicy) -> list[str]:
    """The routing policy as sentences, for the model card and the reviewer's screen."""
    words = []
    if policy.review_all:
        words.append("Every decision goes to a person: the review-all breaker is on.")
    if policy.confidence_threshold > 0:
        threshold = _percent(policy.confidence_threshold)
        words.append(f"Decisions with confidence below {threshold} go to a person.")
    else:
        words.append("Low confidence alone does not send a decision to a person.")
    for rule in policy.high_stakes:
        when = describe_condition(rule["when"])
        words.append(f"High stakes ({rule['name']}): a person decides when {when}.")
    if policy.random_audit_rate > 0:
        words.append(
            f"{policy.random_audit_rate:g}% of decisions are picked at random for audit, "
            "whatever the model said."
        )
    if policy.active_learning_budget > 0:
        words.append(
            f"Up to {policy.active_learning_budget} of the most uncertain other decisions a day "
            f"(margin at most {policy.active_learning_max_margin:g}) are reviewed to teach "
            "the model."
        )
    if policy.reviewers_required == 2:
        words.append(
            "Two reviewers decide independently; a senior reviewer settles any disagreement."
        )
    else:
        words.append("One reviewer decides each routed case.")
    if policy.blind_review:
        words.append("Reviewers answer before they see the model's outcome (blind review).")
    words.append(f"Reviews are due within {policy.sla_hours} hours.")
    if policy.retrain_min_new_labels > 0:
        words.append(
            f"A candidate is retrained automatically after every {policy.retrain_min_new_labels} "
            "new human labels."
        )
    words.append(
        f"The people decisions are about may appeal for {policy.appeal_window_days} days after "
        "a decision is final; a senior reviewer who took no part in it decides."
    )
    return words


def feature_range(spec: dict) -> str:
    if spec["type"] == "category":
        return ", ".join(spec["choices"])
    if spec["type"] == "boolean":
        return "true / false"
    lo, hi = spec.get("min"), spec.get("max")
    return f"{'' if lo is None else f'{lo:g}'} – {'' if hi is None else f'{hi:g}'}".strip()


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def metric_tables(metrics: dict) -> list[dict]:
    """Metrics as tables: overall first, then one table per protected attribute.

    Uploads are checked (models_registry.metrics); parts of older rows that are not of that
    shape are left out rather than break the card."""
    tables = []
    metrics = metrics if isinstance(metrics, dict) else {}
    overall = metrics.get("overall")
    if isinstance(overall, dict) and overall:
        tables.append({"title": "Overall", "columns": list(overall),
                       "rows": [["all", *[_fmt(v) for v in overall.values()]]]})  # fmt: skip
    by_group = metrics.get("by_group")
    for attribute, groups in (by_group if isinstance(by_group, dict) else {}).items():
        if not isinstance(groups, dict) or not groups:
            continue
        columns = sorted(
            {key for values in groups.values() if isinstance(values, dict) for key in values}
        )
        rows = [[group, *[_fmt(values.get(c, "")) for c in columns]]
                for group, values in groups.items() if isinstance(values, dict)]  # fmt: skip
        tables.append({"title": f"By {attribute}", "columns": columns, "rows": rows})
    return tables


def card_context(model: MLModel) -> dict:
    policy = current_policy(model)
    versions = model.versions.select_related(
        "created_by", "promoted_by", "parent"
    ).prefetch_related("datasets")
    return {
        "model": model,
        "features": [{**spec, "range": feature_range(spec)} for spec in model.features],
        "versions": [{"v": v, "tables": metric_tables(v.metrics)} for v in versions],
        "policy": policy,
        "policy_words": policy_in_words(policy) if policy else [],
    }


def card_markdown(model: MLModel) -> str:
    return render_to_string("models_registry/card.md", card_context(model))
