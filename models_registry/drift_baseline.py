"""The drift baseline a version is uploaded with: how its training data was distributed, feature
by feature and for the score, in bins. oversight.drift compares recent decisions against it
(the population stability index, PSI).

    {
      "rows": 1591,                                    # optional: training rows behind it
      "features": {
        "income":   {"edges": [31.0, 48.5, 77.0], "proportions": [0.2, 0.3, 0.3, 0.2]},
        "history":  {"proportions": {"good": 0.5, "fair": 0.3, "poor": 0.2}},
        "bankrupt": {"proportions": {"true": 0.1, "false": 0.9}}
      },
      "score": {"edges": [0.25, 0.5, 0.75], "proportions": [0.1, 0.2, 0.3, 0.4]}
    }

- A number or integer feature (and the score) has `edges`, k strictly increasing finite cut
  points making k + 1 bins: below edges[0]; [edges[i-1], edges[i]); at or above edges[-1].
  `proportions` lists the training share of each bin (k + 1 numbers).
- A category feature maps each value to its share; a boolean one maps "true" and "false".
- Shares are finite, at least 0, and sum to 1 (within 1e-6). Features left out are not
  monitored. The score is the model's probability of the favourable label.

Versions uploaded before this existed have no drift baseline: their drift is reported as "no
baseline", never guessed. `build()` makes one from a training frame (deciles by default).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from core.lazy import lazy_module
from models_registry import schema

np = lazy_module("numpy")
pd = lazy_module("pandas")

Errors = dict[str, list[str]]
TOLERANCE = 1e-6
MAX_BINS = 100
KEYS = {"rows", "features", "score"}
EXAMPLE = (
    '{"features": {"income": {"edges": [30, 60], "proportions": [0.3, 0.4, 0.3]}}, '
    '"score": {"edges": [0.5], "proportions": [0.4, 0.6]}}'
)


def check(baseline: Any, specs: list[dict], *, prefix: str = "drift_baseline") -> Errors:
    """Every way `baseline` departs from the shape above, keyed by path."""
    if baseline in (None, {}):
        return {}
    if not isinstance(baseline, dict):
        return {prefix: [f"must be a JSON object like {EXAMPLE}"]}
    errors: Errors = {
        f"{prefix}.{key}": [f"is not a part of a drift baseline; the parts are {', '.join(KEYS)}"]
        for key in sorted(set(baseline) - KEYS)
    }
    rows = baseline.get("rows")
    if rows is not None and not (isinstance(rows, int) and not isinstance(rows, bool) and rows > 0):
        errors[f"{prefix}.rows"] = ["must be a whole number of training rows, at least 1"]
    features = baseline.get("features", {})
    if not isinstance(features, dict):
        errors[f"{prefix}.features"] = ["must map feature names to their bins"]
        features = {}
    by_name = {spec["name"]: spec for spec in specs}
    for name, bins in features.items():
        where = f"{prefix}.features.{name}"
        spec = by_name.get(name)
        if spec is None:
            errors[where] = ["is not a feature of this model"]
        elif spec["type"] in ("number", "integer"):
            errors.update(_numeric_errors(bins, where))
        else:
            errors.update(_shares_errors(bins, where, _values_of(spec)))
    if "score" in baseline:
        errors.update(_numeric_errors(baseline["score"], f"{prefix}.score"))
    return errors


def _values_of(spec: dict) -> list[str]:
    return list(spec["choices"]) if spec["type"] == "category" else ["true", "false"]


def _numeric_errors(bins: Any, where: str) -> Errors:
    if not isinstance(bins, dict) or set(bins) != {"edges", "proportions"}:
        return {where: ['must be {"edges": [...], "proportions": [...]}']}
    edges, shares = bins["edges"], bins["proportions"]
    if (
        not isinstance(edges, list)
        or not 1 <= len(edges) < MAX_BINS
        or not all(schema.is_finite_number(e) for e in edges)
        or any(b <= a for a, b in itertools.pairwise(edges))
    ):
        return {
            f"{where}.edges": [f"must be 1 to {MAX_BINS - 1} strictly increasing finite numbers"]
        }
    if not isinstance(shares, list) or len(shares) != len(edges) + 1:
        return {f"{where}.proportions": [f"must list {len(edges) + 1} shares, one per bin"]}
    return _sum_errors(shares, f"{where}.proportions")


def _shares_errors(bins: Any, where: str, values: list[str]) -> Errors:
    if not isinstance(bins, dict) or set(bins) != {"proportions"}:
        return {where: ['must be {"proportions": {value: share, ...}}']}
    shares = bins["proportions"]
    if not isinstance(shares, dict) or not shares:
        return {f"{where}.proportions": ["must map each value to its share"]}
    unknown = sorted(set(shares) - set(values))
    if unknown:
        return {
            f"{where}.proportions": [
                f"{', '.join(unknown)}: not values of this feature ({', '.join(values)})"
            ]
        }
    return _sum_errors(list(shares.values()), f"{where}.proportions")


def _sum_errors(shares: list, where: str) -> Errors:
    if not all(schema.is_finite_number(s) and s >= 0 for s in shares):
        return {where: ["shares must be finite numbers, at least 0"]}
    if abs(math.fsum(shares) - 1) > TOLERANCE:
        return {where: [f"shares must sum to 1, not {math.fsum(shares):g}"]}
    return {}


# --- making one --------------------------------------------------------------------------------


def build(frame: pd.DataFrame, specs: list[dict], *, scores: Any = None, bins: int = 10) -> dict:
    """A drift baseline from training data: quantile bins (deciles by default) for numbers and
    the score, shares of each value for categories and booleans. Rows missing a value are
    left out of that feature's shares."""
    features = {}
    for spec in specs:
        if spec["name"] not in frame:
            continue
        column = frame[spec["name"]].dropna()
        if column.empty:
            continue
        if spec["type"] in ("number", "integer"):
            numeric = numeric_bins(column.astype(float).to_numpy(), bins)
            if numeric is not None:
                features[spec["name"]] = numeric
        else:
            keys = column.map(_key) if spec["type"] == "boolean" else column.astype(str)
            counts = keys.value_counts()
            total = int(counts.sum())
            features[spec["name"]] = {
                "proportions": {str(k): int(v) / total for k, v in sorted(counts.items())}
            }
    out: dict[str, Any] = {"rows": len(frame), "features": features}
    if scores is not None:
        score = numeric_bins(np.asarray(scores, dtype=float), bins)
        if score is not None:
            out["score"] = score
    return out


def _key(value: Any) -> str:
    return "true" if bool(value) else "false"


def numeric_bins(values: np.ndarray, bins: int) -> dict | None:
    """Quantile cut points (duplicates dropped) and each bin's share; None for a constant."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    cuts = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    cuts = cuts[cuts > values.min()]  # a cut at the minimum would leave its lower bin empty
    if cuts.size == 0:
        return None
    index = np.searchsorted(cuts, values, side="right")
    counts = np.bincount(index, minlength=cuts.size + 1)
    return {
        "edges": [float(c) for c in cuts],
        "proportions": [int(c) / values.size for c in counts],
    }
