"""Read paths of the registry: who sees which model, and the model card."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.template.loader import render_to_string

from core import roles as r
from core.errors import ApplicationError, not_found
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


def not_found_or_not_granted(name: object) -> ApplicationError:
    """The one answer to a model one may not use: the same whether it does not exist or was
    not granted to this client (a service must not learn which models exist)."""
    return not_found(
        f"No model {str(name)!r} for you: not found or not granted. A model service is "
        "granted models by their owner (on the model's page) or by "
        "`manage.py create_service_token NAME --model MODEL`."
    )


def model_for(user: User, name: str, models: QuerySet[MLModel] | None = None) -> MLModel:
    """The model named, among those the user may see (or `models`); a 404 saying it is not
    found or not granted otherwise."""
    models = models_visible_to(user) if models is None else models
    model = models.filter(name=name).first()
    if model is None:
        raise not_found_or_not_granted(name)
    return model


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


# Metrics everyone knows, in the order every table of the card shows them; other metrics follow
# in alphabetical order, and every table of a version has the same columns in the same order.
METRIC_ORDER = (
    "n",
    "accuracy",
    "auc",
    "precision",
    "recall",
    "f1",
    "predicted_approval_rate",
    "actual_approval_rate",
    "false_denial_rate",
)
METRIC_LABELS = {
    "n": "Cases",
    "auc": "AUC",
    "f1": "F1",
}


def metric_label(name: str) -> str:
    return METRIC_LABELS.get(name, name.replace("_", " ").capitalize())


def _metric_columns(rows: list[dict]) -> list[str]:
    seen = {key for row in rows for key in row}
    known = [name for name in METRIC_ORDER if name in seen]
    return known + sorted(seen - set(known))


def metric_tables(metrics: dict) -> list[dict]:
    """Metrics as tables: overall first, then one table per protected attribute, all with the
    same columns in one order (METRIC_ORDER, then the others alphabetically) and readable
    headers.

    Uploads are checked (models_registry.metrics); parts of older rows that are not of that
    shape are left out rather than break the card."""
    metrics = metrics if isinstance(metrics, dict) else {}
    overall = metrics.get("overall")
    overall = overall if isinstance(overall, dict) and overall else None
    by_group = metrics.get("by_group")
    by_group = by_group if isinstance(by_group, dict) else {}
    groups = {
        attribute: {g: v for g, v in values.items() if isinstance(v, dict)}
        for attribute, values in by_group.items()
        if isinstance(values, dict) and values
    }
    every = [overall] if overall else []
    every += [values for table in groups.values() for values in table.values()]
    columns = _metric_columns(every)
    labels = [metric_label(c) for c in columns]
    tables = []
    if overall:
        row = ["all", *[_fmt(overall.get(c, "")) for c in columns]]
        tables.append({"title": "Overall", "columns": labels, "rows": [row]})
    for attribute, table in groups.items():
        rows = [[group, *[_fmt(values.get(c, "")) for c in columns]]
                for group, values in table.items()]  # fmt: skip
        tables.append({"title": f"By {attribute}", "columns": labels, "rows": rows})
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


def model_services(model: MLModel) -> dict:
    """The services granted the model, and the other model services its owner may grant."""
    granted = list(model.services.order_by("username").values_list("username", flat=True))
    others = (
        User.objects.filter(groups__name=r.MODEL_SERVICE, is_active=True)
        .exclude(username__in=granted)
        .order_by("username")
        .values_list("username", flat=True)
    )
    return {"granted": granted, "others": list(others)}
