"""Statistics on counts: the numbers the database aggregated (never rows) go in, rates with
their intervals, differences, tests and the population stability index come out.

Each method is the textbook one that statsmodels or scipy implements, called here so that a
reader can check a report against them:
- a rate's 95 % interval: Wilson's score interval (statsmodels `proportion_confint`,
  method="wilson");
- a difference of two rates: Newcombe's hybrid score interval, built from the two Wilson
  intervals without continuity correction (Newcombe 1998, method 10; statsmodels
  `confint_proportions_2indep`, method="newcomb");
- whether rates differ across groups: Pearson's chi-square on the groups × (overridden, not)
  table, without Yates' correction (scipy `chi2_contingency(correction=False)`); with two groups
  and an expected count below 5, Fisher's exact test instead (scipy `fisher_exact`,
  two-sided); with more groups and an expected count below 5 the chi-square is kept and marked
  approximate;
- the p-values of all the tests of one report adjusted together by Holm's step-down method
  (as statsmodels `multipletests`, method="holm", computes it; written out here, see holm).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from core.lazy import lazy_module

np = lazy_module("numpy")
sp = lazy_module("scipy.stats")
proportion = lazy_module("statsmodels.stats.proportion")


ALPHA = 0.05  # 95 % intervals
# PSI takes the log of shares; an empty bin is given this share instead of 0 (a common floor;
# it caps one empty bin's contribution near 0.0009 + share × ln(share / 1e-4)).
PSI_FLOOR = 1e-4


def rate(count: int, n: int) -> float | None:
    return count / n if n else None


def wilson(count: int, n: int) -> tuple[float | None, float | None]:
    """Wilson's 95 % interval of count / n; (None, None) when n is 0."""
    if n <= 0:
        return None, None
    low, high = proportion.proportion_confint(count, n, alpha=ALPHA, method="wilson")
    return float(low), float(high)


def newcombe(count1: int, n1: int, count2: int, n2: int) -> tuple[float, float, float] | None:
    """The difference count1/n1 − count2/n2 with Newcombe's hybrid score 95 % interval."""
    if n1 <= 0 or n2 <= 0:
        return None
    low, high = proportion.confint_proportions_2indep(
        count1, n1, count2, n2, method="newcomb", compare="diff", alpha=ALPHA
    )
    return count1 / n1 - count2 / n2, float(low), float(high)


@dataclass
class Comparison:
    method: str | None  # "chi2", "fisher", or None when there is nothing to test
    statistic: float | None
    dof: int | None
    p_value: float | None
    approximate: bool
    note: str
    p_holm: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def difference_test(table: list[tuple[int, int]]) -> Comparison:
    """Do the rates differ? `table` has one (overridden, not overridden) pair per group."""
    if len(table) < 2:
        return Comparison(None, None, None, None, False, "fewer than two groups to compare")
    observed = np.asarray(table, dtype=np.int64)
    column_sums = observed.sum(axis=0)
    if (column_sums == 0).any():
        what = "none was" if column_sums[0] == 0 else "all were"
        return Comparison(
            None, None, None, None, False, f"{what} overridden in every group: nothing to test"
        )
    expected = np.outer(observed.sum(axis=1), column_sums) / observed.sum()
    small = bool((expected < 5).any())
    if small and len(table) == 2:
        odds, p = sp.fisher_exact(observed, alternative="two-sided")
        odds = float(odds)
        return Comparison(
            "fisher",
            odds if math.isfinite(odds) else None,
            None,
            float(p),
            False,
            "Fisher's exact test, two-sided (an expected count is below 5)",
        )
    result = sp.chi2_contingency(observed, correction=False)
    note = "Pearson's chi-square, no continuity correction"
    if small:
        note += "; approximate: an expected count is below 5"
    return Comparison(
        "chi2", float(result.statistic), int(result.dof), float(result.pvalue), small, note
    )


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm-adjusted p-values of the tests that could be run (None stays None): the i-th
    smallest of m p-values times (m − i + 1), made non-decreasing, at most 1. Written out
    rather than calling statsmodels' multipletests, which runs a full garbage collection on
    every call (a quarter of a second); the tests check the two agree."""
    present = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running, m = 0.0, len(present)
    for rank, (p, index) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[index] = running
    return adjusted


def ratio_lowest_to_highest(rates: dict[str, float | None]) -> dict | None:
    """The four-fifths rule's ratio: the lowest selection rate over the highest."""
    known = {group: r for group, r in rates.items() if r is not None}
    if len(known) < 2:
        return None
    lowest = min(known, key=lambda g: (known[g], g))
    highest = max(known, key=lambda g: (known[g], g))
    value = known[lowest] / known[highest] if known[highest] > 0 else None
    return {"ratio": value, "lowest": lowest, "highest": highest}


def psi(expected: list[float], counts: list[int]) -> float | None:
    """Population stability index of observed counts against expected shares, over the same
    bins: Σ (actual − expected) · ln(actual / expected), shares floored at PSI_FLOOR."""
    total = sum(counts)
    if total == 0:
        return None
    value = 0.0
    for share, count in zip(expected, counts, strict=True):
        e = max(share, PSI_FLOOR)
        a = max(count / total, PSI_FLOOR)
        value += (a - e) * math.log(a / e)
    return value
