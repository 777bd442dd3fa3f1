"""Metrics on the holdout, overall and per protected group, computed by hand with numpy (the
tests check them against fairlearn's MetricFrame).

The positive class is the model's favourable label: selection rate is how often it is
predicted, the false positive rate how often it is predicted for people whose true label is
another, the false negative rate how often it is withheld from people whose true label is it.
Every rate comes with the count it is a rate of.
"""

from __future__ import annotations

from typing import Any

from core.lazy import lazy_module
from models_registry.artifacts import class_labels

np = lazy_module("numpy")
pd = lazy_module("pandas")
sklearn_metrics = lazy_module("sklearn.metrics")

RATES = ("selection_rate", "false_positive_rate", "false_negative_rate")
# The count each rate is a rate of: all rows, true negatives + false positives, positives.
DENOMINATOR = {
    "selection_rate": "n",
    "false_positive_rate": "negatives",
    "false_negative_rate": "positives",
}


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 6) if denominator else None


def rates(y_true_fav: np.ndarray, y_pred_fav: np.ndarray) -> dict[str, Any]:
    positives = int(y_true_fav.sum())
    negatives = int((~y_true_fav).sum())
    return {
        "n": len(y_true_fav),
        "positives": positives,
        "negatives": negatives,
        "selection_rate": _rate(int(y_pred_fav.sum()), len(y_true_fav)),
        "false_positive_rate": _rate(int((y_pred_fav & ~y_true_fav).sum()), negatives),
        "false_negative_rate": _rate(int((~y_pred_fav & y_true_fav).sum()), positives),
    }


def predictions(estimator: Any, X: pd.DataFrame, favourable: str) -> tuple[np.ndarray, np.ndarray]:
    """(predicted labels, probability of the favourable label) for each row."""
    proba = np.asarray(estimator.predict_proba(X), dtype=float)
    classes = class_labels(estimator)
    predicted = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    return predicted, proba[:, classes.index(favourable)]


def measure(
    estimator: Any,
    X: pd.DataFrame,
    y: np.ndarray,
    groups: pd.DataFrame,
    *,
    favourable: str,
    min_count: int,
) -> dict:
    """{"overall": {...}, "by_group": {attribute: {group: {...}}}} for one estimator."""
    predicted, score = predictions(estimator, X, favourable)
    y = np.asarray(y, dtype=object)
    true_fav = y == favourable
    pred_fav = predicted == favourable
    overall = {"accuracy": _rate(int((predicted == y).sum()), len(y)), "roc_auc": None}
    if 0 < true_fav.sum() < len(y):
        overall["roc_auc"] = round(float(sklearn_metrics.roc_auc_score(true_fav, score)), 6)
    overall.update(rates(true_fav, pred_fav))
    by_group: dict[str, dict] = {}
    for attribute in groups.columns:
        values = groups[attribute].to_numpy(dtype=object)
        by_group[attribute] = {}
        for group in sorted({v for v in values if isinstance(v, str)}):
            mask = values == group
            row = rates(true_fav[mask], pred_fav[mask])
            row["accuracy"] = _rate(int((predicted[mask] == y[mask]).sum()), int(mask.sum()))
            row["too_small"] = [m for m in RATES if row[DENOMINATOR[m]] < min_count]
            by_group[attribute][group] = row
    return {"overall": overall, "by_group": by_group}


def gaps(by_group: dict) -> dict[str, dict[str, dict]]:
    """The largest difference of each rate between the groups of each attribute, over the
    groups large enough for it: {attribute: {rate: {"gap", "groups": [the two]}}}."""
    out: dict[str, dict[str, dict]] = {}
    for attribute, groups in by_group.items():
        out[attribute] = {}
        for metric in RATES:
            sized = {
                g: row[metric]
                for g, row in groups.items()
                if metric not in row["too_small"] and row[metric] is not None
            }
            if len(sized) < 2:
                out[attribute][metric] = {"gap": None, "groups": sorted(sized)}
                continue
            low, high = min(sized, key=sized.get), max(sized, key=sized.get)
            out[attribute][metric] = {
                "gap": round(sized[high] - sized[low], 6),
                "groups": [low, high],
            }
    return out


def as_version_metrics(measured: dict) -> dict:
    """The shape a version's metrics have on the model card (numbers or nulls only)."""
    return {
        "overall": dict(measured["overall"]),
        "by_group": {
            attribute: {
                group: {k: v for k, v in row.items() if k != "too_small"}
                for group, row in groups.items()
            }
            for attribute, groups in measured["by_group"].items()
        },
    }
