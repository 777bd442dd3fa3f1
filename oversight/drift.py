"""Drift: the population stability index (PSI) of each feature and of the score, recent
decisions of a version against its drift baseline (models_registry.drift_baseline).

The recent decisions are counted into the baseline's bins by the database, one GROUP BY per
feature: numbers by `width_bucket` over the baseline's edges on PostgreSQL (a CASE elsewhere),
categories and booleans by their value. A value the baseline never saw (a new category) falls
in an "other" bin whose expected share is 0; missing values are counted apart and left out.
PSI = Σ (actual − expected) · ln(actual / expected) over the bins (oversight.stats.psi).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Exists, FloatField, Func, IntegerField, OuterRef, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils import timezone

from models_registry.models import MLModel, ModelVersion
from oversight import stats
from reviews.models import Decision

SCORE = "score"
OTHER = "(other)"


class WidthBucket(Func):
    """The bin of a number among ascending edges: 0 below edges[0], i for edges[i-1] ≤ x <
    edges[i], len(edges) at or above the last (PostgreSQL's width_bucket with an array of
    thresholds; a CASE on other databases)."""

    output_field = IntegerField()

    def __init__(self, expression: Any, edges: list[float]) -> None:
        self.edges = [float(e) for e in edges]
        super().__init__(expression)

    def as_postgresql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        # One array parameter: the edges are data, never spliced into the SQL text.
        return f"width_bucket({sql}, %s::double precision[])", [*params, self.edges]

    def as_sql(self, compiler, connection, **extra):
        value, params = compiler.compile(self.source_expressions[0])
        sql, out = [f"CASE WHEN {value} IS NULL THEN NULL"], list(params)
        for index, edge in enumerate(self.edges):
            sql.append(f"WHEN {value} < %s THEN {index}")
            out += [*params, edge]
        sql.append(f"ELSE {len(self.edges)} END")
        return " ".join(sql), out


def _number(path: str, key: str) -> Cast:
    return Cast(KeyTextTransform(key, path), FloatField())


def window_decisions(version: ModelVersion, since: datetime) -> QuerySet[Decision]:
    return Decision.objects.filter(model_version=version, received_at__gte=since).order_by()


def numeric_counts(decisions: QuerySet[Decision], expression: Any, edges: list[float]) -> dict:
    """{bin index or None (missing): count}, one GROUP BY."""
    rows = (
        decisions.annotate(bin=WidthBucket(expression, edges)).values("bin").annotate(n=Count("id"))
    )
    return {row["bin"]: row["n"] for row in rows}


def value_counts(decisions: QuerySet[Decision], feature: str, boolean: bool) -> dict:
    """{value or None (missing): count}, one GROUP BY on the feature's JSON value."""
    rows = (
        decisions.annotate(value=KeyTextTransform(feature, "features"))
        .values("value")
        .annotate(n=Count("id"))
    )
    counts: dict = {}
    for row in rows:
        key = _boolean_key(row["value"]) if boolean else row["value"]
        counts[key] = counts.get(key, 0) + row["n"]
    return counts


def _boolean_key(value: Any) -> str | None:
    # PostgreSQL's ->> gives "true"/"false"; SQLite's JSON_EXTRACT gives 1/0.
    if value is None:
        return None
    return "true" if str(value).lower() in ("true", "1") else "false"


def _edge_label(edges: list[float], index: int) -> str:
    if index == 0:
        return f"< {edges[0]:g}"
    if index == len(edges):
        return f"≥ {edges[-1]:g}"
    return f"[{edges[index - 1]:g}, {edges[index]:g})"


def _numeric_entry(name: str, kind: str, bins: dict, counts: dict) -> dict:
    edges, expected = bins["edges"], bins["proportions"]
    observed = [counts.get(i, 0) for i in range(len(edges) + 1)]
    labels = [_edge_label(edges, i) for i in range(len(edges) + 1)]
    return _entry(name, kind, labels, expected, observed, counts.get(None, 0))


def _shares_entry(name: str, kind: str, bins: dict, counts: dict) -> dict:
    shares = bins["proportions"]
    labels = list(shares)
    observed = [counts.get(value, 0) for value in labels]
    other = sum(n for value, n in counts.items() if value is not None and value not in shares)
    expected = [shares[value] for value in labels]
    if other:
        labels, expected, observed = [*labels, OTHER], [*expected, 0.0], [*observed, other]
    return _entry(name, kind, labels, expected, observed, counts.get(None, 0))


def _entry(
    name: str, kind: str, labels: list, expected: list, observed: list, missing: int
) -> dict:
    total = sum(observed)
    value = stats.psi(expected, observed)
    return {
        "feature": name,
        "kind": kind,
        "psi": value,
        "alert": value is not None and value > settings.DRIFT_PSI_ALERT,
        "trip": value is not None and value > settings.DRIFT_PSI_TRIP,
        "counted": total,
        "missing": missing,
        "bins": [
            {"bin": str(label), "expected": e, "actual": (n / total if total else None), "count": n}
            for label, e, n in zip(labels, expected, observed, strict=True)
        ],
    }


def version_drift(version: ModelVersion, *, now: datetime | None = None) -> dict:
    """The PSI of every feature in the version's drift baseline, and of the score, over the
    last DRIFT_WINDOW_DAYS. Status: "ok", "no_baseline" (uploaded without one) or "too_few"
    (fewer than DRIFT_MIN_DECISIONS decisions in the window: nothing is computed)."""
    now = now or timezone.now()
    since = now - timedelta(days=settings.DRIFT_WINDOW_DAYS)
    decisions = window_decisions(version, since)
    result = {
        "model": version.model.name,
        "version": version.number,
        "version_status": version.status,
        "since": since,
        "window_days": settings.DRIFT_WINDOW_DAYS,
        "min_decisions": settings.DRIFT_MIN_DECISIONS,
        "decisions": None,
        "status": "ok",
        "features": [],
        "max_psi": None,
        "worst": None,
    }
    baseline = version.drift_baseline or {}
    if not baseline.get("features") and not baseline.get(SCORE):
        result["status"] = "no_baseline"
        return result
    result["decisions"] = decisions.count()
    if result["decisions"] < settings.DRIFT_MIN_DECISIONS:
        result["status"] = "too_few"
        return result
    result["features"] = _features(version, decisions, baseline)
    scored = [f for f in result["features"] if f["psi"] is not None]
    if scored:
        worst = max(scored, key=lambda f: f["psi"])
        result["max_psi"], result["worst"] = worst["psi"], worst["feature"]
    return result


def _features(version: ModelVersion, decisions: QuerySet[Decision], baseline: dict) -> list:
    specs = {spec["name"]: spec for spec in version.model.features}
    out = []
    for name, bins in baseline.get("features", {}).items():
        spec = specs.get(name)
        if spec is None:  # the schema lost a feature since: nothing to compare
            continue
        if spec["type"] in ("number", "integer"):
            counts = numeric_counts(decisions, _number("features", name), bins["edges"])
            out.append(_numeric_entry(name, spec["type"], bins, counts))
        else:
            counts = value_counts(decisions, name, spec["type"] == "boolean")
            out.append(_shares_entry(name, spec["type"], bins, counts))
    if SCORE in baseline:
        favourable = version.model.favourable_label
        score = _number("probabilities", favourable)
        counts = numeric_counts(decisions, score, baseline[SCORE]["edges"])
        out.append(_numeric_entry(SCORE, SCORE, baseline[SCORE], counts))
    return out


def versions_watched(model: MLModel, since: datetime) -> QuerySet[ModelVersion]:
    """The versions whose drift is watched: the champion, and any that scored decisions since."""
    recent = Decision.objects.filter(model_version=OuterRef("pk"), received_at__gte=since)
    champion = Q(status=ModelVersion.Status.CHAMPION)
    return model.versions.filter(champion | Q(Exists(recent))).order_by("-number")


def model_drift(
    model: MLModel, *, version: ModelVersion | None = None, now: datetime | None = None
) -> list[dict]:
    """version_drift of one version, or of every watched version of the model."""
    now = now or timezone.now()
    if version is not None:
        return [version_drift(version, now=now)]
    since = now - timedelta(days=settings.DRIFT_WINDOW_DAYS)
    return [version_drift(v, now=now) for v in versions_watched(model, since)]
