"""Small groups: suppressed, never merged; their counts for auditors only, and not recoverable by
subtraction for anyone else. And the report's queries do not grow with the data."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from oversight.report_filters import ReportFilters
from oversight.reports import COUNTS, hidden_cells, override_report
from tests.fixtures import register_tiny
from tests.oversight.reportdata import Row, random_rows, store

pytestmark = pytest.mark.django_db


def _rows(race: str, reviewed: int, overridden: int, unrouted: int = 0) -> list[Row]:
    return (
        [Row({"race": race, "sex": "f"}, "approve", "deny", "reviewer")] * overridden
        + [Row({"race": race, "sex": "m"}, "approve", "approve", "reviewer")]
        * (reviewed - overridden)
        + [Row({"race": race, "sex": "m"})] * unrouted
    )


@pytest.fixture
def model(erin):
    model = register_tiny(erin, [])
    store(model, _rows("a", 40, 8) + _rows("b", 25, 10) + _rows("c", 30, 3) + _rows("d", 4, 2, 9))
    return model


def _table(model, full: bool, attributes=("race",), **filters) -> dict:
    report = override_report(
        ReportFilters(model=model, attributes=list(attributes), **filters), full=full
    )
    return report["tables"][-1]


def test_a_small_group_is_suppressed_without_a_rate_and_left_out_of_the_test(model):
    table = _table(model, full=True)
    d = next(g for g in table["groups"] if g["group"] == "d")
    assert d["suppressed"] and d["suppressed_because"].startswith("fewer than 10")
    assert d["override_rate"] is d["ci_low"] is d["selection_rate_final"] is None
    assert d["difference"] is None and d["appeal_rate"] is None
    # Auditors see its counts; it is reported as itself, not merged into another group.
    assert (d["decisions"], d["reviewed"], d["overridden"]) == (13, 4, 2)
    assert [g["group"] for g in table["groups"]] == ["a", "b", "c", "d"]
    # The test covers the three shown groups only.
    assert table["test"]["method"] == "chi2" and table["test"]["dof"] == 2


def test_others_see_no_count_of_a_small_group_nor_of_the_group_that_would_give_it_away(model):
    table = _table(model, full=False)
    by_group = {g["group"]: g for g in table["groups"]}
    d, b = by_group["d"], by_group["b"]
    assert all(d[name] is None for name in COUNTS)
    # The total is public (every decision is), so one hidden group would be total − the others:
    # the smallest other group (b, 25 reviewed) is hidden too.
    assert b["suppressed"] and "worked out" in b["suppressed_because"]
    assert all(b[name] is None for name in COUNTS) and b["override_rate"] is None
    assert by_group["a"]["reviewed"] == 40 and by_group["c"]["override_rate"] == 0.1
    # The comparisons are made on what this viewer sees.
    assert table["test"]["method"] == "fisher"  # two groups left, one expected count below 5


def test_no_line_of_an_intersection_has_exactly_one_hidden_cell(erin, settings):
    settings.REPORT_MIN_CELL = 15
    model = register_tiny(erin, [])
    store(model, random_rows(500, seed=5))
    table = _table(model, full=False, attributes=("race", "sex"), intersect=True)
    hidden = {tuple(g["values"].values()) for g in table["groups"] if g["suppressed"]}
    cells = [tuple(g["values"].values()) for g in table["groups"]]
    assert hidden  # the case is interesting
    for position in range(2):
        for value in {c[position] for c in cells}:
            line = [c for c in cells if c[position] == value]
            assert sum(c in hidden for c in line) != 1, line
    assert sum(c in hidden for c in cells) != 1
    for g in table["groups"]:
        if g["suppressed"]:
            assert g["reviewed"] is None and g["override_rate"] is None


def test_hidden_cells_hides_the_smallest_visible_cell_until_no_line_has_one():
    reviewed = {"a": 50, "b": 3, "c": 20, "d": 30}
    assert hidden_cells(reviewed, {"b"}, [["a", "b", "c", "d"]], protect=True) == {"b", "c"}
    assert hidden_cells(reviewed, {"b"}, [["a", "b", "c", "d"]], protect=False) == {"b"}
    assert hidden_cells(reviewed, {"b", "c"}, [["a", "b", "c", "d"]], protect=True) == {"b", "c"}
    # A cell hidden for one line may leave another line with one: that is followed through.
    lines = [["a", "b"], ["b", "c"], ["c", "d"]]
    assert hidden_cells(reviewed, {"a"}, lines, protect=True) == {"a", "b", "c", "d"}


def test_decisions_without_the_attribute_are_their_own_group(erin, settings):
    settings.REPORT_MIN_CELL = 1
    model = register_tiny(erin, [])
    store(model, _rows("a", 12, 3) + [Row({}, "approve", "deny", "reviewer")] * 2)
    table = _table(model, full=True)
    missing = next(g for g in table["groups"] if not g["recorded"])
    assert missing["group"] == "(not recorded)" and missing["reviewed"] == 2
    assert table["test"]["method"] is None  # one recorded group: nothing to compare
    assert table["reference"] == "a"


def test_the_weekly_trend_suppresses_thin_weeks(erin):
    model = register_tiny(erin, [])
    monday = timezone.now() - timedelta(days=timezone.now().weekday() + 14)
    rows = [
        Row({"race": "a"}, "approve", "deny" if i % 4 == 0 else "approve", "reviewer",
            received_at=monday + timedelta(days=7 * (i % 2), hours=1))
        for i in range(30)
    ]  # fmt: skip
    first_week = monday + timedelta(hours=2)
    rows += [Row({"race": "b"}, "approve", "approve", "reviewer", received_at=first_week)] * 3
    store(model, rows)
    trend = override_report(ReportFilters(model=model, attributes=["race"]), full=True)["trend"][0]
    assert [w["week"] for w in trend["weeks"]] == [
        monday.date().isoformat(),
        (monday + timedelta(days=7)).date().isoformat(),
    ]
    first = {c["group"]: c for c in trend["weeks"][0]["groups"]}
    assert first["a"]["reviewed"] == 15 and first["a"]["override_rate"] == pytest.approx(8 / 15)
    assert first["b"]["suppressed"] and first["b"]["override_rate"] is None
    assert first["b"]["reviewed"] == 3  # an auditor's view
    hidden = override_report(ReportFilters(model=model, attributes=["race"]), full=False)["trend"][
        0
    ]
    cell = next(c for c in hidden["weeks"][0]["groups"] if c["group"] == "b")
    assert cell["reviewed"] is None


def test_the_number_of_queries_does_not_grow_with_the_decisions(erin):
    model = register_tiny(erin, [])
    filters = ReportFilters(model=model, attributes=["race", "sex"], intersect=True)
    store(model, random_rows(60, seed=1))
    with CaptureQueriesContext(connection) as small:
        override_report(filters, full=True)
    store(model, random_rows(600, seed=2), start=1000)
    with CaptureQueriesContext(connection) as large:
        report = override_report(filters, full=True)
    assert len(large) == len(small) <= 12
    assert report["totals"]["decisions"] == 660
    # Every query aggregates: none reads decision rows one by one.
    for query in large.captured_queries:
        sql = query["sql"].upper()
        assert "COUNT(" in sql or "GROUP BY" in sql, sql


def test_filters_select_by_time_version_reason_and_sample(erin, tiny_artifact):
    from models_registry import services as registry

    model = register_tiny(erin, [])
    v1 = registry.version_upload(model=model, artifact=tiny_artifact, actor=erin)
    old = timezone.now() - timedelta(days=40)
    store(model, [Row({"race": "a"}, received_at=old, version=v1)] * 3)
    store(
        model,
        [Row({"race": "a"}, "approve", "deny", "reviewer", reasons=("high_stakes",))] * 5,
        start=10,
    )
    store(
        model,
        [Row({"race": "a"}, "approve", "deny", "reviewer", reasons=("random_audit",))] * 2,
        start=20,
    )

    def total(**filters) -> int:
        report = override_report(
            ReportFilters(model=model, attributes=["race"], **filters), full=True
        )
        return report["totals"]["decisions"]

    assert total() == 10
    assert total(since=timezone.now() - timedelta(days=1)) == 7
    assert total(until=timezone.now() - timedelta(days=1)) == 3
    assert total(version=v1) == 3
    assert total(reason="high_stakes") == 5
    assert total(sample="random_audit") == 2
