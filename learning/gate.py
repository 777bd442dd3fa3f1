"""The promotion gate: the checks a candidate must pass against the champion on the holdout.

Refused (each failed check listed) when the candidate is worse overall beyond a tolerance,
or widens any group gap (largest difference in false negative rate, false positive rate or
selection rate between the groups of an attribute) beyond a tolerance; when the holdout is
empty or has one class only; and when a group is too small to tell (it is reported, not
silently passed). An owner may promote anyway with a written justification.
"""

from __future__ import annotations

from dataclasses import dataclass

from learning.metrics import DENOMINATOR, RATES, gaps

NAMES = {
    "selection_rate": "selection rate",
    "false_positive_rate": "false positive rate",
    "false_negative_rate": "false negative rate",
    "accuracy": "accuracy",
    "roc_auc": "ROC AUC",
}


@dataclass(frozen=True)
class Tolerances:
    overall: float
    gap: float
    min_count: int

    def as_dict(self) -> dict:
        return {"overall": self.overall, "gap": self.gap, "min_count": self.min_count}


def check(candidate: dict, champion: dict, rows: int, tolerances: Tolerances) -> list[dict]:
    """Every failed check, each {"code", "message", ...}; [] when the candidate may go."""
    if rows == 0:
        return [
            {
                "code": "holdout_empty",
                "message": "There is no holdout to compare on: no "
                "human labels of random-audit decisions in the holdout half, and no uploaded "
                "test split.",
            }
        ]
    failed = _overall(candidate["overall"], champion["overall"], tolerances)
    failed += _too_small(candidate["by_group"], tolerances)
    failed += _widened(gaps(candidate["by_group"]), gaps(champion["by_group"]), tolerances)
    return failed


def _overall(candidate: dict, champion: dict, tolerances: Tolerances) -> list[dict]:
    failed = []
    if candidate["positives"] == 0 or candidate["negatives"] == 0:
        failed.append(
            {
                "code": "holdout_one_class",
                "message": f"The holdout ({candidate['n']} "
                "rows) holds one class only: ROC AUC and error rates cannot be compared.",
            }
        )
    for metric in ("accuracy", "roc_auc"):
        new, old = candidate[metric], champion[metric]
        if new is None or old is None:
            continue
        if old - new > tolerances.overall:
            failed.append(
                {
                    "code": f"{metric}_worse",
                    "metric": metric,
                    "candidate": new,
                    "champion": old,
                    "message": f"{NAMES[metric]} is {new:.3f} against the champion's {old:.3f}: "
                    f"worse by {old - new:.3f}, beyond the tolerance of {tolerances.overall:g}.",
                }
            )
    return failed


def _too_small(by_group: dict, tolerances: Tolerances) -> list[dict]:
    failed = []
    for attribute, groups in by_group.items():
        for group, row in groups.items():
            if not row["too_small"]:
                continue
            counts = ", ".join(
                f"{NAMES[m]} from {row[DENOMINATOR[m]]} {DENOMINATOR[m]}" for m in row["too_small"]
            )
            failed.append(
                {
                    "code": "group_too_small",
                    "attribute": attribute,
                    "group": group,
                    "metrics": row["too_small"],
                    "message": f"{attribute}={group} is too small on the holdout to tell "
                    f"({counts}; at least {tolerances.min_count} needed).",
                }
            )
    return failed


def _widened(new_gaps: dict, old_gaps: dict, tolerances: Tolerances) -> list[dict]:
    failed = []
    for attribute, by_metric in new_gaps.items():
        for metric in RATES:
            new = by_metric[metric]["gap"]
            old = old_gaps.get(attribute, {}).get(metric, {}).get("gap")
            if new is None or old is None or new - old <= tolerances.gap:
                continue
            low, high = by_metric[metric]["groups"]
            failed.append(
                {
                    "code": "gap_widened",
                    "attribute": attribute,
                    "metric": metric,
                    "candidate": new,
                    "champion": old,
                    "message": f"The {NAMES[metric]} gap between {attribute} groups widens from "
                    f"{old:.3f} to {new:.3f} ({low} vs {high}), beyond the tolerance of "
                    f"{tolerances.gap:g}.",
                }
            )
    return failed
