"""The report as a person reads it: the charts (oversight.svg) and the flat tables behind them,
which are also what the CSV and JSON downloads hold."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from django.utils.safestring import SafeString

from oversight import svg

TABLES = ("overrides", "selection", "trend", "appeals", "drift")


# --- charts -----------------------------------------------------------------------------------


def _suppressed_note(group: dict, min_cell: int) -> str:
    return f"suppressed: fewer than {min_cell} reviewed" if group["suppressed"] else "no data"


def override_chart(table: dict, index: int, min_cell: int) -> SafeString:
    rows = [
        svg.Interval(
            label=g["group"],
            value=g["override_rate"],
            low=g["ci_low"],
            high=g["ci_high"],
            note=_suppressed_note(g, min_cell),
            reference=g["is_reference"],
        )
        for g in table["groups"]
    ]
    reference = next((g for g in table["groups"] if g["is_reference"]), None)
    ref_rate = reference["override_rate"] if reference else None
    shown = ", ".join(
        f"{r.label} {svg.percent(r.value)} (95% interval {svg.percent(r.low)} to "
        f"{svg.percent(r.high)})"
        for r in rows
        if r.value is not None
    )
    desc = (
        f"Override rate by {table['attribute']}, each with its Wilson 95% interval as whiskers; "
        f"the dashed line is the reference group ({table['reference'] or 'none'}). {shown}. "
        "Suppressed groups have no rate. The table below the chart has every number."
    )
    return svg.interval_chart(
        f"override-chart-{index}",
        f"Override rate by {table['attribute']}",
        desc,
        rows,
        reference=ref_rate,
    )


def selection_chart(table: dict, index: int) -> SafeString:
    rows = [
        (g["group"], g["selection_rate_model"], g["selection_rate_final"])
        for g in table["groups"]
        if not g["suppressed"]
    ]
    listed = "; ".join(
        f"{label}: model {svg.percent(a)}, after review {svg.percent(b)}" for label, a, b in rows
    )
    desc = (
        f"Selection rate (favourable outcome) by {table['attribute']}: solid bars by the "
        f"model's outcome, hatched bars after human review. {listed}. The table below has the "
        "numbers and the four-fifths ratios."
    )
    return svg.paired_bars(
        f"selection-chart-{index}",
        f"Selection rate by {table['attribute']}, before and after review",
        desc,
        rows,
        ("model's outcome (before review)", "final outcome (after review)"),
    )


def trend_chart(trend: dict, index: int) -> SafeString:
    weeks = [w["week"] for w in trend["weeks"]]
    groups = sorted({c["group"] for w in trend["weeks"] for c in w["groups"]})
    series = []
    for group in groups:
        points = []
        for week in trend["weeks"]:
            cell = next((c for c in week["groups"] if c["group"] == group), None)
            points.append(cell["override_rate"] if cell else None)
        series.append((group, points))
    desc = (
        f"Weekly override rate by {trend['attribute']} over {len(weeks)} week(s), one line per "
        "group, each with its own marker shape and dash; gaps are weeks with too few reviews. "
        "The table below lists every week."
    )
    return svg.line_chart(
        f"trend-chart-{index}",
        f"Weekly override rate by {trend['attribute']}",
        desc,
        weeks,
        series,
    )


def appeals_chart(table: dict, index: int, available: bool) -> SafeString:
    rows = [(g["group"], g["appeal_rate"]) for g in table["groups"] if not g["suppressed"]]
    desc = f"Appeal rate by {table['attribute']} (appeals per decision). " + (
        "Appeals are not recorded in this build yet, so every rate is 0."
        if not available
        else "; ".join(f"{label} {svg.percent(v)}" for label, v in rows)
    )
    return svg.bar_chart(
        f"appeals-chart-{index}", f"Appeal rate by {table['attribute']}", desc, rows
    )


def drift_chart(drift: dict, index: int, alert: float, trip: float) -> SafeString:
    rows = [(f["feature"], f["psi"]) for f in drift["features"]]
    listed = "; ".join(f"{name} {value:.3f}" for name, value in rows if value is not None)
    desc = (
        f"Population stability index of each feature and the score, version {drift['version']}, "
        f"last {drift['window_days']} days against its training baseline; dashed lines at the "
        f"alert ({alert}) and breaker ({trip}) thresholds. {listed}."
    )
    return svg.bar_chart(
        f"drift-chart-{index}",
        f"Drift (PSI) of version {drift['version']}",
        desc,
        rows,
        thresholds=[(alert, f"alert {alert}"), (trip, f"breaker {trip}")],
        as_percent=False,
    )


# --- the tables behind them (and the downloads) -------------------------------------------------


def override_rows(report: dict) -> list[dict]:
    rows = []
    for table in report["tables"]:
        test = table["test"]
        for g in table["groups"]:
            difference = g["difference"] or {}
            rows.append(
                {
                    "attribute": table["attribute"],
                    "group": g["group"],
                    "suppressed": g["suppressed"],
                    "reference": g["is_reference"],
                    "decisions": g["decisions"],
                    "routed": g["routed"],
                    "reviewed": g["reviewed"],
                    "overridden": g["overridden"],
                    "override_rate": g["override_rate"],
                    "ci_low": g["ci_low"],
                    "ci_high": g["ci_high"],
                    "fav_to_unfav": g["fav_to_unfav"],
                    "fav_to_unfav_rate": g["fav_to_unfav_rate"],
                    "unfav_to_fav": g["unfav_to_fav"],
                    "unfav_to_fav_rate": g["unfav_to_fav_rate"],
                    "difference": difference.get("value"),
                    "difference_ci_low": difference.get("ci_low"),
                    "difference_ci_high": difference.get("ci_high"),
                    "test": test["method"],
                    "p_value": test["p_value"],
                    "p_holm": test["p_holm"],
                }
            )
    return rows


def selection_rows(report: dict) -> list[dict]:
    rows = []
    for table in report["tables"]:
        selection = table["selection"]
        for g in table["groups"]:
            rows.append(
                {
                    "attribute": table["attribute"],
                    "group": g["group"],
                    "suppressed": g["suppressed"],
                    "final": g["final"],
                    "model_favourable": g["final_model_favourable"],
                    "selection_rate_model": g["selection_rate_model"],
                    "final_favourable": g["final_favourable"],
                    "selection_rate_final": g["selection_rate_final"],
                    "ratio_model": (selection["model"] or {}).get("ratio"),
                    "ratio_final": (selection["final"] or {}).get("ratio"),
                }
            )
    return rows


def trend_rows(report: dict) -> list[dict]:
    return [
        {"attribute": trend["attribute"], "week": week["week"], **cell}
        for trend in report["trend"]
        for week in trend["weeks"]
        for cell in week["groups"]
    ]


def appeal_rows(report: dict) -> list[dict]:
    note = report["appeals"]["note"] or ""
    return [
        {
            "attribute": table["attribute"],
            "group": g["group"],
            "suppressed": g["suppressed"],
            "decisions": g["decisions"],
            "appeals": g["appeals"],
            "appeal_rate": g["appeal_rate"],
            "overturned": g["overturned"],
            "overturn_rate": g["overturn_rate"],
            "note": note,
        }
        for table in report["tables"]
        for g in table["groups"]
    ]


def drift_rows(drifts: list[dict]) -> list[dict]:
    rows = []
    for drift in drifts:
        if not drift["features"]:
            rows.append({"version": drift["version"], "status": drift["status"]})
        for feature in drift["features"]:
            for b in feature["bins"]:
                rows.append(
                    {
                        "version": drift["version"],
                        "status": drift["status"],
                        "feature": feature["feature"],
                        "psi": feature["psi"],
                        "bin": b["bin"],
                        "expected": b["expected"],
                        "actual": b["actual"],
                        "count": b["count"],
                    }
                )
    return rows


ROWS: dict[str, Callable] = {
    "overrides": override_rows,
    "selection": selection_rows,
    "trend": trend_rows,
    "appeals": appeal_rows,
}


def as_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    columns = list(dict.fromkeys(key for row in rows for key in row))
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()
