"""Scoring feature rows with a model version's estimator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.lazy import lazy_module
from models_registry.artifacts import class_labels

np = lazy_module("numpy")
pd = lazy_module("pandas")


@dataclass
class Score:
    outcome: str
    confidence: float
    probabilities: dict[str, float]
    margin: float


def frame(specs: list[dict], rows: list[dict]) -> pd.DataFrame:
    """One column per schema feature, named and ordered as in the schema."""
    columns: dict[str, Any] = {}
    for spec in specs:
        values = [row.get(spec["name"]) for row in rows]
        if spec["type"] == "category":
            columns[spec["name"]] = pd.Series(values, dtype=object)
        else:
            columns[spec["name"]] = np.array(
                [np.nan if v is None else float(v) for v in values], dtype=float
            )
    return pd.DataFrame(columns, columns=[spec["name"] for spec in specs])


def probabilities(estimator: Any, specs: list[dict], rows: list[dict]) -> np.ndarray:
    return np.asarray(estimator.predict_proba(frame(specs, rows)), dtype=float)


def scores_from(labels: list[str], proba: np.ndarray) -> list[Score]:
    order = np.argsort(-proba, axis=1)
    top = proba[np.arange(len(proba)), order[:, 0]]
    second = (
        proba[np.arange(len(proba)), order[:, 1]] if proba.shape[1] > 1 else np.zeros(len(proba))
    )
    return [
        Score(
            outcome=labels[order[i, 0]],
            confidence=round(float(top[i]), 6),
            probabilities={
                label: round(float(p), 6) for label, p in zip(labels, proba[i], strict=True)
            },
            margin=round(float(top[i] - second[i]), 6),
        )
        for i in range(len(proba))
    ]


def score(estimator: Any, specs: list[dict], rows: list[dict]) -> list[Score]:
    return scores_from(class_labels(estimator), probabilities(estimator, specs, rows))
