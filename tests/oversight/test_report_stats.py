"""The statistics on hand-built small cases, against formulas written out here (independently of
statsmodels and scipy), and the report on the edge cases: a zero count, a group of one, all
overridden."""

from __future__ import annotations

import math

import pytest
from scipy.stats import chi2_contingency, norm

from oversight import stats
from oversight.report_filters import ReportFilters
from oversight.reports import override_report
from tests.fixtures import register_tiny
from tests.oversight.reportdata import Row, store

TOL = 1e-9
Z = norm.isf(0.025)


def wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    p = k / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z / (1 + Z**2 / n) * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    return centre - half, centre + half


@pytest.mark.parametrize("k,n", [(0, 10), (10, 10), (1, 1), (0, 1), (3, 17), (250, 1000)])
def test_wilson_intervals_match_the_formula(k, n):
    low, high = stats.wilson(k, n)
    expected = wilson_by_hand(k, n)
    assert abs(low - expected[0]) < TOL and abs(high - expected[1]) < TOL


def test_a_zero_count_has_an_interval_from_zero():
    low, high = stats.wilson(0, 10)
    assert abs(low) < TOL  # not below zero, as a Wald interval would be
    assert abs(high - Z**2 / (10 + Z**2)) < TOL


def test_no_reviews_means_no_interval():
    assert stats.wilson(0, 0) == (None, None)
    assert stats.rate(0, 0) is None
    assert stats.newcombe(1, 0, 1, 5) is None


@pytest.mark.parametrize(
    "a,b",
    [
        ((56, 70), (48, 80)),
        ((9, 10), (3, 10)),
        ((6, 7), (2, 7)),
        ((5, 56), (0, 29)),
        ((0, 10), (0, 20)),
    ],
)
def test_newcombe_hybrid_score_interval_matches_the_formula(a, b):
    (k1, n1), (k2, n2) = a, b
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_by_hand(k1, n1)
    l2, u2 = wilson_by_hand(k2, n2)
    low = (p1 - p2) - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = (p1 - p2) + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    value, got_low, got_high = stats.newcombe(k1, n1, k2, n2)
    assert abs(value - (p1 - p2)) < TOL
    assert abs(got_low - low) < TOL and abs(got_high - high) < TOL


def test_newcombe_reproduces_the_published_example():
    # Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 vs 48/80, method 10.
    _, low, high = stats.newcombe(56, 70, 48, 80)
    assert round(low, 4) == 0.0524 and round(high, 4) == 0.3339


def test_chi_square_by_hand():
    table = [(10, 40), (20, 30), (5, 45)]
    result = stats.difference_test(table)
    rows, columns = [sum(r) for r in table], [sum(c) for c in zip(*table, strict=True)]
    total = sum(rows)
    statistic = sum(
        (table[i][j] - rows[i] * columns[j] / total) ** 2 / (rows[i] * columns[j] / total)
        for i in range(3)
        for j in range(2)
    )
    assert result.method == "chi2" and result.dof == 2 and not result.approximate
    assert abs(result.statistic - statistic) < 1e-9
    assert abs(result.p_value - math.exp(-statistic / 2)) < 1e-9  # chi-square, 2 df


def test_more_than_two_small_groups_keep_the_chi_square_marked_approximate():
    table = [(1, 9), (3, 7), (0, 6)]
    result = stats.difference_test(table)
    expected = chi2_contingency(table, correction=False)
    assert result.method == "chi2" and result.approximate
    assert abs(result.p_value - expected.pvalue) < TOL
    assert "approximate" in result.note


@pytest.mark.parametrize(
    "table,note",
    [([(0, 10), (0, 5)], "none was overridden"), ([(4, 0), (9, 0)], "all were overridden")],
)
def test_rates_all_zero_or_all_one_are_not_tested(table, note):
    result = stats.difference_test(table)
    assert result.method is None and result.p_value is None and note in result.note


def test_one_group_is_not_tested():
    assert stats.difference_test([(3, 10)]).p_value is None


def test_holm_by_hand_and_tests_that_could_not_run_stay_out():
    adjusted = stats.holm([0.01, None, 0.04, 0.03])
    # Sorted 0.01, 0.03, 0.04 over m = 3: 0.03, max(0.06, 0.03), max(0.04, 0.06).
    assert adjusted[1] is None
    assert abs(adjusted[0] - 0.03) < TOL
    assert abs(adjusted[3] - 0.06) < TOL
    assert abs(adjusted[2] - 0.06) < TOL
    assert stats.holm([None]) == [None]


def test_psi_by_hand_with_an_empty_bin_floored():
    expected = [0.25, 0.25, 0.5]
    counts = [50, 0, 50]
    a = [0.5, 1e-4, 0.5]
    e = expected
    by_hand = sum((x - y) * math.log(x / y) for x, y in zip(a, e, strict=True))
    assert abs(stats.psi(expected, counts) - by_hand) < TOL
    assert stats.psi(expected, [0, 0, 0]) is None
    assert abs(stats.psi([0.5, 0.5], [10, 10])) < TOL


def test_the_four_fifths_ratio_is_lowest_over_highest():
    ratio = stats.ratio_lowest_to_highest({"a": 0.4, "b": 0.8, "c": None, "d": 0.6})
    assert ratio == {"ratio": 0.5, "lowest": "a", "highest": "b"}
    assert stats.ratio_lowest_to_highest({"a": 0.4}) is None
    assert stats.ratio_lowest_to_highest({"a": 0.0, "b": 0.0})["ratio"] is None


# --- the edge cases in a report ---------------------------------------------------------------


@pytest.mark.django_db
def test_a_group_of_one_and_a_group_never_overridden(erin, settings):
    settings.REPORT_MIN_CELL = 1
    model = register_tiny(erin, [])
    store(
        model,
        [Row({"race": "a"}, "approve", "deny", "reviewer")]
        + [Row({"race": "b"}, "approve", "approve", "reviewer")] * 12,
    )
    table = override_report(ReportFilters(model=model, attributes=["race"]), full=True)["tables"][0]
    one, never = (next(g for g in table["groups"] if g["group"] == name) for name in "ab")
    assert one["reviewed"] == 1 and one["override_rate"] == 1.0 and not one["suppressed"]
    assert (one["ci_low"], one["ci_high"]) == pytest.approx(wilson_by_hand(1, 1), abs=TOL)
    assert never["override_rate"] == 0.0 and abs(never["ci_low"]) < TOL
    assert table["reference"] == "b"
    value, low, high = stats.newcombe(1, 1, 0, 12)
    assert one["difference"] == {"value": value, "ci_low": low, "ci_high": high}
    assert one["fav_to_unfav_rate"] == 1.0 and one["unfav_to_fav_rate"] == 0.0


@pytest.mark.django_db
def test_all_overridden_gives_rates_of_one_and_no_test(erin, settings):
    settings.REPORT_MIN_CELL = 1
    model = register_tiny(erin, [])
    store(
        model,
        [Row({"race": "a"}, "deny", "approve", "adjudicator")] * 4
        + [Row({"race": "b"}, "approve", "deny", "appeal")] * 3,
    )
    report = override_report(ReportFilters(model=model, attributes=["race"]), full=True)
    table = report["tables"][0]
    assert [g["override_rate"] for g in table["groups"]] == [1.0, 1.0]
    assert all(abs(g["ci_high"] - 1) < TOL for g in table["groups"])
    assert table["test"]["method"] is None and table["test"]["p_holm"] is None
    assert "all were overridden" in table["test"]["note"]
    assert report["totals"]["overridden"] == report["totals"]["reviewed"] == 7


@pytest.mark.parametrize(
    "p_values",
    [[0.01, 0.04, 0.03, 0.005], [0.5, 0.5, 0.5], [1e-12, 0.9], [0.2], [0.049, 0.051, 0.0001, 0.3]],
)
def test_holm_agrees_with_statsmodels(p_values):
    from statsmodels.stats.multitest import multipletests

    expected = multipletests(p_values, method="holm")[1]
    assert all(abs(a - b) < TOL for a, b in zip(stats.holm(p_values), expected, strict=True))
