"""Every number of the override report against statsmodels, scipy and fairlearn computed on the
same data (kept in a pandas frame by the test), to 1e-9."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, demographic_parity_ratio, selection_rate
from scipy.stats import chi2_contingency, fisher_exact
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from oversight.report_filters import ReportFilters
from oversight.reports import override_report
from tests.fixtures import register_tiny
from tests.oversight.reportdata import frame, random_rows, store

pytestmark = pytest.mark.django_db
TOL = 1e-9


@pytest.fixture
def data(erin):
    model = register_tiny(erin, [])
    rows = random_rows(900)
    store(model, rows)
    return model, frame(rows)


def _key(df: pd.DataFrame, attributes: list[str]) -> pd.Series:
    return df[attributes].astype(str).agg("/".join, axis=1)


def _expected_groups(df: pd.DataFrame, attributes: list[str]) -> pd.DataFrame:
    df = df.assign(group=_key(df, attributes))
    reviewed = df[df["reviewed"]]
    final = df[df["final"]]
    out = pd.DataFrame(
        {
            "decisions": df.groupby("group").size(),
            "routed": df.groupby("group")["routed"].sum(),
            "reviewed": reviewed.groupby("group").size(),
            "overridden": reviewed.groupby("group")["overridden"].sum(),
            "fav_to_unfav": reviewed.assign(
                x=(reviewed["model_outcome"] == "approve")
                & (reviewed["final_outcome"] != "approve")
            )
            .groupby("group")["x"]
            .sum(),
            "unfav_to_fav": reviewed.assign(
                x=(reviewed["model_outcome"] != "approve")
                & (reviewed["final_outcome"] == "approve")
            )
            .groupby("group")["x"]
            .sum(),
            "final": final.groupby("group").size(),
        }
    ).fillna(0)
    return out.astype(int)


def _check_table(table: dict, df: pd.DataFrame, attributes: list[str]) -> None:
    expected = _expected_groups(df, attributes)
    rows = {g["group"]: g for g in table["groups"]}
    assert set(rows) == set(expected.index)
    for group, e in expected.iterrows():
        row = rows[group]
        assert not row["suppressed"]
        for column in expected.columns:
            assert row[column] == e[column], (group, column)
        assert row["override_rate"] == pytest.approx(e.overridden / e.reviewed, abs=TOL)
        low, high = proportion_confint(e.overridden, e.reviewed, alpha=0.05, method="wilson")
        assert abs(row["ci_low"] - low) < TOL and abs(row["ci_high"] - high) < TOL
        assert abs(row["fav_to_unfav_rate"] - e.fav_to_unfav / e.reviewed) < TOL
        assert abs(row["unfav_to_fav_rate"] - e.unfav_to_fav / e.reviewed) < TOL

    # The reference is the group with the most reviewed decisions; differences: Newcombe.
    reference = expected["reviewed"].idxmax()
    assert table["reference"] == reference and rows[reference]["is_reference"]
    ref = expected.loc[reference]
    for group, e in expected.iterrows():
        if group == reference:
            assert rows[group]["difference"] is None
            continue
        low, high = confint_proportions_2indep(
            e.overridden, e.reviewed, ref.overridden, ref.reviewed, method="newcomb"
        )
        difference = rows[group]["difference"]
        assert (
            abs(difference["value"] - (e.overridden / e.reviewed - ref.overridden / ref.reviewed))
            < TOL
        )
        assert abs(difference["ci_low"] - low) < TOL and abs(difference["ci_high"] - high) < TOL

    # The test that the rates differ: chi-square on groups × (overridden, not).
    observed = np.column_stack(
        [expected["overridden"], expected["reviewed"] - expected["overridden"]]
    )
    chi2 = chi2_contingency(observed, correction=False)
    assert table["test"]["method"] == "chi2"
    assert abs(table["test"]["statistic"] - chi2.statistic) < TOL
    assert abs(table["test"]["p_value"] - chi2.pvalue) < TOL
    assert table["test"]["dof"] == chi2.dof

    # Selection rates before and after review, with fairlearn, over decisions with a final outcome.
    final = df[df["final"]]
    sensitive = _key(final, attributes)
    for which, column in (("model", "model_outcome"), ("final", "final_outcome")):
        y_pred = (final[column] == "approve").astype(int)
        frame_ = MetricFrame(
            metrics=selection_rate, y_true=y_pred, y_pred=y_pred, sensitive_features=sensitive
        )
        for group, value in frame_.by_group.items():
            assert abs(rows[group][f"selection_rate_{which}"] - value) < TOL
        ratio = demographic_parity_ratio(y_pred, y_pred, sensitive_features=sensitive)
        assert abs(table["selection"][which]["ratio"] - ratio) < TOL


def test_every_number_matches_statsmodels_scipy_and_fairlearn(data, dave):
    model, df = data
    filters = ReportFilters(model=model, attributes=["race", "sex"], intersect=True)
    report = override_report(filters, full=True)
    tables = {t["attribute"]: t for t in report["tables"]}
    assert set(tables) == {"race", "sex", "race × sex"}
    _check_table(tables["race"], df, ["race"])
    _check_table(tables["sex"], df, ["sex"])
    _check_table(tables["race × sex"], df, ["race", "sex"])
    # Holm across every test of the report.
    p_values = [t["test"]["p_value"] for t in report["tables"]]
    adjusted = multipletests(p_values, method="holm")[1]
    for table, p in zip(report["tables"], adjusted, strict=True):
        assert abs(table["test"]["p_holm"] - p) < TOL
    totals = report["totals"]
    assert totals["decisions"] == len(df) and totals["reviewed"] == df["reviewed"].sum()
    assert totals["overridden"] == df["overridden"].sum()


def test_the_random_audit_sample_is_the_randomly_audited_decisions_only(data):
    model, df = data
    filters = ReportFilters(model=model, attributes=["race"], sample="random_audit")
    report = override_report(filters, full=True)
    audited = df[df["random_audit"]]
    assert report["totals"]["decisions"] == len(audited)
    assert report["totals"]["overridden"] == audited["overridden"].sum()
    assert "unbiased" in report["notes"][0]


def test_two_small_groups_are_compared_with_fishers_exact_test(erin, settings):
    from tests.oversight.reportdata import Row

    settings.REPORT_MIN_CELL = 1
    model = register_tiny(erin, [])
    rows = (
        [Row({"race": "a"}, "approve", "deny", "reviewer")] * 3
        + [Row({"race": "a"}, "approve", "approve", "reviewer")] * 9
        + [Row({"race": "b"}, "approve", "deny", "reviewer")] * 1
        + [Row({"race": "b"}, "approve", "approve", "reviewer")] * 14
    )
    store(model, rows)
    table = override_report(ReportFilters(model=model, attributes=["race"]), full=True)["tables"][0]
    odds, p = fisher_exact([[3, 9], [1, 14]], alternative="two-sided")
    assert table["test"]["method"] == "fisher"
    assert abs(table["test"]["p_value"] - p) < TOL
    assert abs(table["test"]["statistic"] - odds) < TOL
    assert abs(table["test"]["p_holm"] - p) < TOL  # one test: Holm changes nothing
