"""Why the model decided as it did: per-feature contributions and a counterfactual.

Two methods, recorded with the numbers they produce:

- `linear_exact` (binary linear models, e.g. a Pipeline ending in LogisticRegression): each
  transformed column contributes coefficient × transformed value to the log-odds of the
  favourable label; columns are summed back to the input feature they came from. Which columns
  come from which feature is found by probing the fitted preprocessor one feature at a time, so
  any column-wise preprocessing (scaling, one-hot encoding, imputation) is handled; a column the
  probes do not move (a distant bin, a missing-value indicator) makes the model not exact.
  `base` + the sum of contributions equals the model's log-odds exactly.
- `replace_with_baseline` (any other model): a feature's contribution is the change in the
  probability of the favourable label (the predicted label for multi-class models) when that
  feature alone is replaced by its baseline value (the training median or mode, when uploaded).

The counterfactual is, among the features marked actionable, the smallest single-feature change
within the schema's range that flips the outcome: solved exactly for linear models, found by a
grid search refined by bisection otherwise. Changes are compared as a fraction of the feature's
range (a category or boolean change counts as a whole range).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from audit.canonical import canonical_json
from core.lazy import lazy_module
from models_registry.artifacts import class_labels
from models_registry.scoring import frame

np = lazy_module("numpy")
sklearn_pipeline = lazy_module("sklearn.pipeline")

LINEAR = "linear_exact"
BASELINE = "replace_with_baseline"
GRID_STEPS = 16
BISECT_STEPS = 16


# --- which method, and the reference values ------------------------------------------------


def default_baseline(specs: list[dict]) -> dict[str, Any]:
    """Reference values when none were uploaded: range midpoints, first choices, false."""
    return {spec["name"]: _midpoint(spec) for spec in specs}


def _midpoint(spec: dict) -> Any:
    if spec["type"] == "category":
        return spec["choices"][0]
    if spec["type"] == "boolean":
        return False
    lo, hi = spec.get("min"), spec.get("max")
    value = (
        (lo + hi) / 2 if lo is not None and hi is not None else (lo if lo is not None else hi) or 0
    )
    return round(value) if spec["type"] == "integer" else float(value)


@dataclass
class Linear:
    """A binary linear model seen through its preprocessing."""

    pre: Any
    coef: np.ndarray  # per transformed column, towards the favourable label
    base: float  # the intercept, towards the favourable label
    columns: dict[str, np.ndarray]  # feature -> its transformed columns
    levels: dict[str, dict[Any, float]] = field(default_factory=dict)  # category/boolean values
    slopes: dict[str, float] = field(default_factory=dict)  # affine numeric features


def linear_view(
    estimator: Any, specs: list[dict], favourable: str, baseline: dict
) -> Linear | None:
    """The model as base + Σ coef·z, or None when it is not a binary linear model."""
    final = estimator[-1] if isinstance(estimator, sklearn_pipeline.Pipeline) else estimator
    pre = (
        estimator[:-1]
        if isinstance(estimator, sklearn_pipeline.Pipeline) and len(estimator) > 1
        else None
    )
    coef, intercept = getattr(final, "coef_", None), getattr(final, "intercept_", None)
    if coef is None or intercept is None or np.ndim(coef) != 2 or np.shape(coef)[0] != 1:
        return None
    labels = class_labels(final)
    if len(labels) != 2 or favourable not in labels:
        return None
    sign = 1.0 if labels[1] == favourable else -1.0
    coef = sign * np.asarray(coef[0], dtype=float)
    try:
        return _probe(pre, coef, sign * float(np.ravel(intercept)[0]), specs, baseline)
    except (ValueError, TypeError, IndexError):
        return None


def linear_probabilities(view: Linear, estimator: Any, specs: list[dict], rows: list[dict]):
    """(transformed rows, predict_proba) with the preprocessing run once, not twice: the
    explanation needs the transformed rows that scoring computes anyway."""
    Z = _transform(view.pre, specs, rows)
    final = estimator[-1] if isinstance(estimator, sklearn_pipeline.Pipeline) else estimator
    return Z, np.asarray(final.predict_proba(Z), dtype=float)


def _transform(pre: Any, specs: list[dict], rows: list[dict]) -> np.ndarray:
    X = frame(specs, rows)
    Z = X.to_numpy(dtype=float) if pre is None else pre.transform(X)
    Z = Z.toarray() if hasattr(Z, "toarray") else Z
    return np.asarray(Z, dtype=float)


def _variants(spec: dict, base_value: Any) -> list[Any]:
    if spec["type"] == "category":
        return list(spec["choices"])
    if spec["type"] == "boolean":
        return [False, True]
    b = float(base_value if base_value is not None else 0.0)
    return [b, b + 1.0, b + 3.0]


def _probe(
    pre: Any, coef: np.ndarray, intercept: float, specs: list[dict], baseline: dict
) -> Linear | None:
    reference = {spec["name"]: baseline.get(spec["name"], _midpoint(spec)) for spec in specs}
    z0 = _transform(pre, specs, [reference])[0]
    if z0.shape[0] != coef.shape[0]:
        return None
    view = Linear(pre=pre, coef=coef, base=0.0, columns={})
    claimed = np.zeros(coef.shape[0], dtype=bool)
    for spec in specs:
        name = spec["name"]
        values = _variants(spec, reference[name])
        Z = _transform(pre, specs, [{**reference, name: v} for v in values])
        cols = np.flatnonzero(np.any(np.abs(Z - z0) > 1e-12, axis=0))
        if claimed[cols].any():
            return None  # a column moved by two features: not separable, so not exact
        claimed[cols] = True
        view.columns[name] = cols
        parts = Z[:, cols] @ coef[cols]
        if spec["type"] in ("category", "boolean"):
            view.levels[name] = dict(zip(values, parts.tolist(), strict=True))
        elif abs(parts[2] - parts[0] - 3 * (parts[1] - parts[0])) <= 1e-9 * (1 + abs(parts[2])):
            view.slopes[name] = float(parts[1] - parts[0])
    if not claimed.all():
        # A column no probe moved (a bin or spline piece away from the reference, a missing-value
        # indicator) may still move for other rows; folding it into `base` would be wrong there.
        return None
    view.base = intercept
    return view


_linear_cache: dict[str, Linear | None] = {}


def linear_for(version: Any, estimator: Any) -> Linear | None:
    """The linear view of a version, computed once per process (None if not linear)."""
    model = version.model
    baseline = version.baseline or default_baseline(model.features)
    return linear_cached(
        version.sha256, estimator, model.features, model.favourable_label, baseline
    )


def linear_cached(
    digest: str, estimator: Any, features: list[dict], favourable: str, baseline: dict
) -> Linear | None:
    """linear_view, once per process for the same artifact (by its sha256) and arguments."""
    key = digest + canonical_json([features, favourable, baseline])
    if key not in _linear_cache:
        if len(_linear_cache) >= 32:
            _linear_cache.clear()
        _linear_cache[key] = linear_view(estimator, features, favourable, baseline)
    return _linear_cache[key]


# --- explaining rows -------------------------------------------------------------------------


def explain(
    *,
    estimator: Any,
    method: str,
    specs: list[dict],
    labels: list[str],
    favourable: str,
    baseline: dict,
    rows: list[dict],
    outcomes: list[str],
    linear: Linear | None = None,
    transformed: np.ndarray | None = None,
) -> list[dict]:
    """An explanation per row: method, contributions (largest first), counterfactual.
    `transformed` may pass the rows already run through a linear model's preprocessing."""
    if method == LINEAR and linear is not None:
        if transformed is None:
            transformed = _transform(linear.pre, specs, rows)
        return _explain_linear(
            linear, estimator, specs, labels, favourable, rows, outcomes, transformed
        )
    return _explain_by_baseline(estimator, specs, labels, favourable, baseline, rows, outcomes)


def _explain_linear(
    view: Linear,
    estimator: Any,
    specs: list[dict],
    labels: list[str],
    favourable: str,
    rows: list[dict],
    outcomes: list[str],
    Z: np.ndarray,
) -> list[dict]:
    names = [spec["name"] for spec in specs]
    C = np.column_stack([Z[:, view.columns[n]] @ view.coef[view.columns[n]] for n in names])
    logits = view.base + C.sum(axis=1)
    other = next(label for label in labels if label != favourable)
    counterfactuals = _linear_counterfactuals(
        view, estimator, specs, rows, outcomes, logits, favourable, other
    )
    return [
        {
            "method": LINEAR,
            "units": "log_odds",
            "towards": favourable,
            "base": round(view.base, 6),
            "log_odds": round(float(logits[i]), 6),
            "contributions": _ranked(names, rows[i], C[i]),
            "counterfactual": counterfactuals[i],
        }
        for i in range(len(rows))
    ]


def _explain_by_baseline(
    estimator: Any,
    specs: list[dict],
    labels: list[str],
    favourable: str,
    baseline: dict,
    rows: list[dict],
    outcomes: list[str],
) -> list[dict]:
    names = [spec["name"] for spec in specs]
    binary = len(labels) == 2
    # predict_proba's columns follow the estimator's classes_, which need not be in the order the
    # model's labels were declared in (only the sets are checked to match).
    labels = class_labels(estimator)
    probes = [dict(row) for row in rows]
    for row in rows:
        probes.extend({**row, name: baseline.get(name)} for name in names)
    P = np.asarray(estimator.predict_proba(frame(specs, probes)), dtype=float)
    n, k = len(rows), len(names)
    targets = [favourable if binary else outcome for outcome in outcomes]
    columns = [labels.index(t) for t in targets]
    counterfactuals = _searched_counterfactuals(estimator, specs, rows, outcomes)
    result = []
    for i in range(n):
        p = P[i, columns[i]]
        replaced = P[n + i * k : n + (i + 1) * k, columns[i]]
        result.append(
            {
                "method": BASELINE,
                "units": "probability",
                "towards": targets[i],
                "probability": round(float(p), 6),
                "baseline": {name: baseline.get(name) for name in names},
                "contributions": _ranked(names, rows[i], p - replaced),
                "counterfactual": counterfactuals[i],
            }
        )
    return result


def _ranked(names: list[str], row: dict, values: np.ndarray) -> list[dict]:
    items = [
        {"feature": name, "value": row.get(name), "contribution": round(float(v), 6)}
        for name, v in zip(names, values, strict=True)
    ]
    return sorted(items, key=lambda item: -abs(item["contribution"]))


# --- counterfactuals ---------------------------------------------------------------------------


def _cost(spec: dict, old: Any, new: Any) -> float:
    if spec["type"] in ("category", "boolean"):
        return 1.0
    lo, hi = spec.get("min"), spec.get("max")
    scale = (hi - lo) if lo is not None and hi is not None and hi > lo else max(abs(old), 1.0)
    return abs(new - old) / scale


def _pick(candidates: list[dict]) -> dict | None:
    if not candidates:
        return None
    ranked = sorted(candidates, key=lambda c: c.pop("_cost"))
    best = dict(ranked[0])
    best["alternatives"] = ranked[1:]
    return best


def _within(spec: dict, value: float) -> bool:
    return (spec.get("min") is None or value >= spec["min"]) and (
        spec.get("max") is None or value <= spec["max"]
    )


def _nudge(spec: dict, x: float, target: float) -> float | None:
    """A value just past the flip point `target`, on the far side from x, inside the range."""
    up = target > x
    if spec["type"] == "integer":
        value = math.floor(target) + 1 if up else math.ceil(target) - 1
    else:
        value = (math.floor(target * 100) + 1) / 100 if up else (math.ceil(target * 100) - 1) / 100
    if _within(spec, value):
        return int(value) if spec["type"] == "integer" else value
    # Rounding stepped past the range, but the flip point is inside it: the bound itself flips.
    bound = spec.get("max") if up else spec.get("min")
    if bound is not None and (bound > target if up else bound < target):
        return bound
    return None


def _linear_counterfactuals(
    view: Linear,
    estimator: Any,
    specs: list[dict],
    rows: list[dict],
    outcomes: list[str],
    logits: np.ndarray,
    favourable: str,
    other: str,
) -> list[dict | None]:
    actionable = [spec for spec in specs if spec.get("actionable")]
    searched = [
        s for s in actionable if s["type"] in ("number", "integer") and s["name"] not in view.slopes
    ]
    fallback = (
        _searched_counterfactuals(estimator, specs, rows, outcomes, only=searched, raw=True)
        if searched
        else [[] for _ in rows]
    )
    result = []
    for i, row in enumerate(rows):
        logit = float(logits[i])
        flipped = other if logit > 0 else favourable
        candidates = list(fallback[i])
        for spec in actionable:
            candidate = _linear_candidate(view, spec, row, logit, flipped)
            if candidate is not None:
                candidates.append(candidate)
        result.append(_pick(candidates))
    return result


def _linear_candidate(
    view: Linear, spec: dict, row: dict, logit: float, flipped: str
) -> dict | None:
    name, x = spec["name"], row.get(spec["name"])
    if x is None:
        return None
    if name in view.levels:
        current = view.levels[name].get(x)
        if current is None:
            return None
        best = None
        for value, part in view.levels[name].items():
            new_logit = logit - current + part
            flips = value != x and (new_logit > 0) != (logit > 0)
            if flips and (best is None or abs(new_logit) > abs(best[1])):
                best = (value, new_logit)
        if best is None:
            return None
        return {"feature": name, "from": x, "to": best[0], "outcome": flipped, "_cost": 1.0}
    slope = view.slopes.get(name)
    if not slope:
        return None
    value = _nudge(spec, float(x), float(x) - logit / slope)
    if value is None:
        return None
    return _numeric_candidate(spec, x, value, flipped)


def _numeric_candidate(spec: dict, x: Any, value: float, flipped: str) -> dict:
    change = round(value - float(x), 6)
    return {
        "feature": spec["name"],
        "from": x,
        "to": value,
        "change": change,
        "outcome": flipped,
        "_cost": _cost(spec, float(x), value),
    }


def _ends(spec: dict, x: float) -> list[float]:
    span = max(abs(x), 1.0) * 10
    lo = spec.get("min") if spec.get("min") is not None else x - span
    hi = spec.get("max") if spec.get("max") is not None else x + span
    return [end for end in (lo, hi) if end != x]


def _searched_counterfactuals(
    estimator: Any,
    specs: list[dict],
    rows: list[dict],
    outcomes: list[str],
    *,
    only: list[dict] | None = None,
    raw: bool = False,
) -> list:
    """Grid search refined by bisection, batched over all rows and features."""
    labels = class_labels(estimator)  # the order of predict_proba's columns
    actionable = only if only is not None else [s for s in specs if s.get("actionable")]

    def predict(probes: list[tuple[int, str, Any]]) -> list[str]:
        if not probes:
            return []
        modified = [{**rows[i], name: value} for i, name, value in probes]
        P = np.asarray(estimator.predict_proba(frame(specs, modified)))
        return [labels[j] for j in P.argmax(axis=1)]

    candidates: list[list[dict]] = [[] for _ in rows]
    _search_levels(predict, actionable, rows, outcomes, candidates)
    _search_numbers(predict, actionable, rows, outcomes, candidates)
    return candidates if raw else [_pick(c) for c in candidates]


def _search_levels(predict, actionable, rows, outcomes, candidates) -> None:
    probes = []
    for i, row in enumerate(rows):
        for spec in actionable:
            if spec["type"] in ("category", "boolean") and row.get(spec["name"]) is not None:
                values = spec["choices"] if spec["type"] == "category" else [False, True]
                probes.extend((i, spec["name"], v) for v in values if v != row[spec["name"]])
    done = set()
    for (i, name, value), label in zip(probes, predict(probes), strict=True):
        if label != outcomes[i] and (i, name) not in done:
            done.add((i, name))
            candidates[i].append(
                {
                    "feature": name,
                    "from": rows[i][name],
                    "to": value,
                    "outcome": label,
                    "_cost": 1.0,
                }
            )


def _search_numbers(predict, actionable, rows, outcomes, candidates) -> None:
    numeric = {s["name"]: s for s in actionable if s["type"] in ("number", "integer")}
    probes, keys = [], []
    for i, row in enumerate(rows):
        for name, spec in numeric.items():
            x = row.get(name)
            if x is None:
                continue
            for end in _ends(spec, float(x)):
                for k in range(1, GRID_STEPS + 1):
                    value = x + (end - x) * k / GRID_STEPS
                    probes.append((i, name, round(value) if spec["type"] == "integer" else value))
                    keys.append((i, name, end, k))
    labels = predict(probes)
    intervals: dict[tuple, list] = {}
    for (i, name, end, k), (_, _, value), label in zip(keys, probes, labels, strict=True):
        key = (i, name, end)
        if label != outcomes[i] and key not in intervals:
            previous = rows[i][name] + (end - rows[i][name]) * (k - 1) / GRID_STEPS
            if numeric[name]["type"] == "integer":
                previous = round(previous)
            intervals[key] = [previous, value, label]
    _bisect(predict, numeric, rows, outcomes, intervals)
    best: dict[tuple, dict] = {}
    for (i, name, _end), (_ok, flip, label) in intervals.items():
        candidate = _numeric_candidate(numeric[name], rows[i][name], flip, label)
        if (i, name) not in best or candidate["_cost"] < best[(i, name)]["_cost"]:
            best[(i, name)] = candidate
    for (i, _name), candidate in best.items():
        candidates[i].append(candidate)


def _bisect(predict, numeric, rows, outcomes, intervals) -> None:
    for _ in range(BISECT_STEPS):
        probes, keys = [], []
        for key, (ok, flip, _label) in intervals.items():
            spec = numeric[key[1]]
            if spec["type"] == "integer":
                if abs(flip - ok) <= 1:
                    continue
                mid = ok + (flip - ok) // 2 if flip > ok else ok - (ok - flip) // 2
            else:
                mid = (ok + flip) / 2
            probes.append((key[0], key[1], mid))
            keys.append(key)
        if not probes:
            break
        for key, (_, _, mid), label in zip(keys, probes, predict(probes), strict=True):
            if label != outcomes[key[0]]:
                intervals[key][1], intervals[key][2] = mid, label
            else:
                intervals[key][0] = mid
    for key, interval in intervals.items():
        spec = numeric[key[1]]
        if spec["type"] == "number":
            x, flip = float(rows[key[0]][key[1]]), interval[1]
            value = (math.ceil(flip * 100) if flip > x else math.floor(flip * 100)) / 100
            interval[1] = value if _within(spec, value) else flip
        else:
            interval[1] = int(interval[1])
