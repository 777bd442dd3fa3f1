"""Group reports: how often people overturn the model, for whom, with honest uncertainty.

Every count is aggregated in the database (GROUP BY over the decisions and their protected
attributes, one LEFT JOIN per attribute); no decision row is read into Python. oversight.stats
turns the counts into rates, intervals, differences and tests.

Definitions (per group of the chosen attributes, among the decisions the filters select):
- reviewed: settled by a person (finalized by a reviewer, an adjudicator or an appeal);
- overridden: reviewed, and the final outcome differs from the model's;
- the direction of overrides: favourable → unfavourable and unfavourable → favourable (the
  model's favourable label), each as a rate of the reviewed;
- selection rates: the share of decisions with a final outcome whose model outcome, and whose
  final outcome, is the favourable label (the same decisions for both, so that "before" and
  "after review" compare like with like; decisions still awaiting review are left out of both).

Groups with fewer than REPORT_MIN_CELL reviewed decisions are suppressed: no rate, and left out
of tests, differences and ratios; they are never merged into another group. Their counts are
for auditors only; for everyone else a suppressed group's counts are hidden, and so are those of
the smallest other group in any line of cells whose total is known (the attribute's total, a row
or column of an intersection, a week or a group of the trend) when it alone is hidden, so that
no hidden count can be worked out by subtraction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.conf import settings
from django.db.models import Count, F, FilteredRelation, Q, QuerySet
from django.db.models.functions import TruncWeek
from django.utils import timezone

from oversight import stats
from oversight.report_filters import ReportFilters
from reviews.models import Decision

HUMAN = (
    Decision.FinalizedBy.REVIEWER,
    Decision.FinalizedBy.ADJUDICATOR,
    Decision.FinalizedBy.APPEAL,
)
COUNTS = (
    "decisions", "routed", "reviewed", "overridden", "fav_to_unfav", "unfav_to_fav",
    "final", "final_model_favourable", "final_favourable",
)  # fmt: skip
NOT_RECORDED = "(not recorded)"
SEPARATOR = "/"
RANDOM_AUDIT_NOTE = (
    "sample=random_audit is the unbiased estimate: randomly audited decisions are drawn "
    "independently of the model's output, so their override rate estimates how often people "
    "would disagree with the model on everything it decides. Other routed decisions were picked "
    "because they looked uncertain or risky, so their override rate overstates disagreement."
)

# --- appeals ----------------------------------------------------------------------------------

APPEALS_AVAILABLE = True
APPEALS_NOTE = (
    "Appeal rates are appeals filed (withdrawn ones included) per decision; overturn rates are "
    "appeals overturned per appeal decided (upheld or overturned)."
)


def appeal_counts(grouped: QuerySet, keys: list[str]) -> dict[tuple, tuple[int, int, int]]:
    """(appealed, decided, overturned) per group key, from `grouped` (the selected decisions
    as `.values(*keys)`), in the same GROUP BY (a decision has at most one appeal)."""
    decided = Q(appeal__status__in=["upheld", "overturned"])
    rows = grouped.annotate(
        appealed=Count("appeal"),
        decided=Count("appeal", filter=decided),
        overturned=Count("appeal", filter=Q(appeal__status="overturned")),
    ).order_by()
    return {
        tuple(row[k] for k in keys): (row["appealed"], row["decided"], row["overturned"])
        for row in rows
    }


# --- counting, in the database ------------------------------------------------------------------


def measures(favourable: str) -> dict:
    """The conditional counts of one GROUP BY (COUNT(*) FILTER (WHERE …) on PostgreSQL)."""
    human = Q(finalized_by__in=HUMAN)
    changed = ~Q(final_outcome=F("model_outcome"))
    final = Q(status=Decision.Status.FINAL)
    fav_model, fav_final = Q(model_outcome=favourable), Q(final_outcome=favourable)
    return {
        "decisions": Count("id"),
        "routed": Count("id", filter=Q(routed=True)),
        "reviewed": Count("id", filter=human),
        "overridden": Count("id", filter=human & changed),
        "fav_to_unfav": Count("id", filter=human & fav_model & ~fav_final),
        "unfav_to_fav": Count("id", filter=human & ~fav_model & fav_final),
        "final": Count("id", filter=final),
        "final_model_favourable": Count("id", filter=final & fav_model),
        "final_favourable": Count("id", filter=final & fav_final),
    }


def with_groups(decisions: QuerySet[Decision], attributes: list[str]) -> tuple[QuerySet, list]:
    """The decisions with one column per attribute (its value, NULL when not recorded), as a
    LEFT JOIN on the protected attributes; returns the queryset and the column names."""
    joins = {
        f"pa_{i}": FilteredRelation("protected", condition=Q(protected__name=name))
        for i, name in enumerate(attributes)
    }
    keys = {f"g_{i}": F(f"pa_{i}__value") for i in range(len(attributes))}
    return decisions.annotate(**joins).annotate(**keys), list(keys)


def group_counts(
    decisions: QuerySet[Decision], attributes: list[str], favourable: str
) -> dict[tuple, dict]:
    """{(value, ...): counts} per combination of the attributes' values (one query)."""
    qs, keys = with_groups(decisions, attributes)
    rows = qs.values(*keys).annotate(**measures(favourable)).order_by()
    return {tuple(row[k] for k in keys): {c: row[c] for c in COUNTS} for row in rows}


def weekly_counts(
    decisions: QuerySet[Decision], attribute: str, favourable: str
) -> dict[tuple, dict]:
    """{(week start, value): counts}, by the week the decisions arrived (one query)."""
    qs, keys = with_groups(decisions, [attribute])
    rows = (
        qs.annotate(week=TruncWeek("received_at"))
        .values("week", *keys)
        .annotate(**measures(favourable))
        .order_by()
    )
    return {(row["week"], row[keys[0]]): {c: row[c] for c in COUNTS} for row in rows}


def total_counts(decisions: QuerySet[Decision], favourable: str) -> dict:
    return decisions.aggregate(**measures(favourable))


# --- suppression ------------------------------------------------------------------------------


def hidden_cells(reviewed: dict, primary: set, lines: Iterable[Iterable], *, protect: bool) -> set:
    """The cells to hide: the primary ones (too few reviewed), and, when `protect`, enough
    others that no line of cells with a known total has exactly one hidden cell (each time the
    smallest visible one of that line is hidden too, until nothing changes)."""
    hidden = set(primary)
    if not protect:
        return hidden
    lines = [list(line) for line in lines]
    changed = True
    while changed:
        changed = False
        for line in lines:
            if sum(cell in hidden for cell in line) != 1:
                continue
            visible = [cell for cell in line if cell not in hidden]
            if visible:
                hidden.add(min(visible, key=lambda c: (reviewed[c], str(c))))
                changed = True
    return hidden


def _lines(keys: list[tuple]) -> list[list[tuple]]:
    """Lines of an attribute table or intersection whose totals are known: every cell (the
    total), and for an intersection each set of cells that differ in one attribute only."""
    lines = [list(keys)]
    width = len(keys[0]) if keys else 0
    if width > 1:
        for position in range(width):
            by_rest = defaultdict(list)
            for key in keys:
                by_rest[key[:position] + key[position + 1 :]].append(key)
            lines += list(by_rest.values())
    return lines


# --- building the report ------------------------------------------------------------------------


def label(values: tuple) -> str:
    if any(v is None for v in values):
        return NOT_RECORDED if len(values) == 1 else SEPARATOR.join(v or "?" for v in values)
    return SEPARATOR.join(values)


def _rates(counts: dict) -> dict:
    reviewed, final = counts["reviewed"], counts["final"]
    low, high = stats.wilson(counts["overridden"], reviewed)
    return {
        "override_rate": stats.rate(counts["overridden"], reviewed),
        "ci_low": low,
        "ci_high": high,
        "fav_to_unfav_rate": stats.rate(counts["fav_to_unfav"], reviewed),
        "unfav_to_fav_rate": stats.rate(counts["unfav_to_fav"], reviewed),
        "selection_rate_model": stats.rate(counts["final_model_favourable"], final),
        "selection_rate_final": stats.rate(counts["final_favourable"], final),
    }


EMPTY_RATES = dict.fromkeys(
    ("override_rate", "ci_low", "ci_high", "fav_to_unfav_rate", "unfav_to_fav_rate",
     "selection_rate_model", "selection_rate_final"),
)  # fmt: skip


def _appeal_fields(appeals: tuple[int, int, int] | None, decisions: int) -> dict:
    appealed, decided, overturned = appeals or (0, 0, 0)
    return {
        "appeals": appealed,
        "appeals_decided": decided,
        "overturned": overturned,
        "appeal_rate": appealed / decisions if decisions else 0.0,
        "overturn_rate": overturned / decided if decided else None,
    }


def _group_row(
    key: tuple, attributes: list[str], counts: dict, *, primary: bool, hidden: bool, full: bool
) -> dict:
    row = {
        "group": label(key),
        "values": dict(zip(attributes, key, strict=True)),
        "recorded": all(v is not None for v in key),
        "suppressed": hidden,
        "suppressed_because": (
            f"fewer than {settings.REPORT_MIN_CELL} reviewed decisions"
            if primary
            else "hidden so that a small group's counts cannot be worked out from the others"
            if hidden
            else None
        ),
        "is_reference": False,
        "difference": None,
    }
    show_counts = full or not hidden
    row.update({c: counts[c] if show_counts else None for c in COUNTS})
    row.update(EMPTY_RATES if hidden else _rates(counts))
    return row


def _table(
    attributes: list[str],
    counts: dict[tuple, dict],
    appeals: dict[tuple, tuple[int, int]],
    filters: ReportFilters,
    full: bool,
) -> dict:
    keys = sorted(counts, key=lambda k: tuple((v is None, v or "") for v in k))
    reviewed = {k: counts[k]["reviewed"] for k in keys}
    primary = {k for k in keys if reviewed[k] < settings.REPORT_MIN_CELL}
    hidden = hidden_cells(reviewed, primary, _lines(keys), protect=not full)
    rows = []
    for key in keys:
        row = _group_row(
            key, attributes, counts[key], primary=key in primary, hidden=key in hidden, full=full
        )
        if not row["suppressed"]:
            row.update(_appeal_fields(appeals.get(key), counts[key]["decisions"]))
        else:
            row.update(
                dict.fromkeys(
                    ("appeals", "appeals_decided", "overturned", "appeal_rate", "overturn_rate")
                )
            )
        rows.append(row)
    shown = [(key, row) for key, row in zip(keys, rows, strict=True) if _compared(row)]
    reference = _reference(shown, filters.references)
    _differences(shown, reference)
    test = stats.difference_test(
        [(row["overridden"], row["reviewed"] - row["overridden"]) for _, row in shown]
    )
    return {
        "attribute": " × ".join(attributes),
        "attributes": attributes,
        "intersection": len(attributes) > 1,
        "reference": reference["group"] if reference else None,
        "groups": rows,
        "test": test.as_dict(),
        "selection": _selection([row for _, row in shown]),
    }


def _compared(row: dict) -> bool:
    """Groups that enter tests, differences and ratios: recorded and not suppressed."""
    return row["recorded"] and not row["suppressed"]


def _reference(shown: list[tuple[tuple, dict]], asked: list[str]) -> dict | None:
    """The group named by `reference=` if shown, else the one with the most reviewed."""
    for name in asked:
        for _, row in shown:
            if row["group"] == name:
                row["is_reference"] = True
                return row
    if not shown:
        return None
    _, row = min(shown, key=lambda item: (-item[1]["reviewed"], item[1]["group"]))
    row["is_reference"] = True
    return row


def _differences(shown: list[tuple[tuple, dict]], reference: dict | None) -> None:
    if reference is None:
        return
    for _, row in shown:
        if row is reference:
            continue
        result = stats.newcombe(
            row["overridden"], row["reviewed"], reference["overridden"], reference["reviewed"]
        )
        if result is not None:
            value, low, high = result
            row["difference"] = {"value": value, "ci_low": low, "ci_high": high}


def _selection(rows: list[dict]) -> dict:
    """The four-fifths rule before (model) and after (final) human review."""
    model = stats.ratio_lowest_to_highest({r["group"]: r["selection_rate_model"] for r in rows})
    final = stats.ratio_lowest_to_highest({r["group"]: r["selection_rate_final"] for r in rows})
    threshold = settings.ALERT_FOUR_FIFTHS

    def passes(result: dict | None) -> bool | None:
        if result is None or result["ratio"] is None:
            return None
        return result["ratio"] >= threshold

    change = None
    if model and final and model["ratio"] is not None and final["ratio"] is not None:
        delta = final["ratio"] - model["ratio"]
        change = "narrowed" if delta > 1e-12 else "widened" if delta < -1e-12 else "unchanged"
    return {
        "threshold": threshold,
        "model": model,
        "final": final,
        "passes_model": passes(model),
        "passes_final": passes(final),
        "review_changed_gap": change,
    }


def _totals(counts: dict) -> dict:
    return {**counts, **_rates(counts)}


def _trend(filters: ReportFilters, attribute: str, full: bool) -> dict:
    """Weekly override rates per group of one attribute."""
    favourable = filters.model.favourable_label
    counts = weekly_counts(filters.decisions(), attribute, favourable)
    keys = sorted(counts, key=lambda k: (k[0], k[1] is None, k[1] or ""))
    reviewed = {k: counts[k]["reviewed"] for k in keys}
    primary = {k for k in keys if reviewed[k] < settings.REPORT_MIN_CELL}
    by_week, by_group = defaultdict(list), defaultdict(list)
    for key in keys:
        by_week[key[0]].append(key)
        by_group[key[1]].append(key)
    hidden = hidden_cells(
        reviewed, primary, [*by_week.values(), *by_group.values()], protect=not full
    )
    weeks = []
    for week, week_keys in by_week.items():
        cells = []
        for key in week_keys:
            c, hide = counts[key], key in hidden
            low, high = (None, None) if hide else stats.wilson(c["overridden"], c["reviewed"])
            cells.append(
                {
                    "group": label((key[1],)),
                    "suppressed": hide,
                    "reviewed": c["reviewed"] if full or not hide else None,
                    "overridden": c["overridden"] if full or not hide else None,
                    "override_rate": None if hide else stats.rate(c["overridden"], c["reviewed"]),
                    "ci_low": low,
                    "ci_high": high,
                }
            )
        weeks.append({"week": week.date().isoformat(), "groups": cells})
    return {"attribute": attribute, "weeks": weeks}


def override_report(filters: ReportFilters, *, full: bool) -> dict:
    """The override report. `full`: the viewer may see the counts of small groups (auditors)."""
    decisions = filters.decisions()
    favourable = filters.model.favourable_label
    sets = [[a] for a in filters.attributes]
    if filters.intersect:
        sets.append(list(filters.attributes))
    tables = []
    for attributes in sets:
        counts = group_counts(decisions, attributes, favourable)
        grouped, keys = with_groups(decisions, attributes)
        appeals = appeal_counts(grouped.values(*keys), keys)
        tables.append(_table(attributes, counts, appeals, filters, full))
    adjusted = stats.holm([t["test"]["p_value"] for t in tables])
    for table, p in zip(tables, adjusted, strict=True):
        table["test"]["p_holm"] = p
    return {
        "model": filters.model.name,
        "favourable_label": favourable,
        "filters": filters.as_dict(),
        "generated_at": timezone.now(),
        "min_cell": settings.REPORT_MIN_CELL,
        "small_group_counts_shown": full,
        "totals": _totals(total_counts(decisions, favourable)),
        "tables": tables,
        "trend": [_trend(filters, a, full) for a in filters.attributes],
        "appeals": {
            "available": APPEALS_AVAILABLE,
            "note": APPEALS_NOTE,
        },
        "notes": _notes(filters),
    }


SELECTION_COUNTS = ("reviewed", "final", "final_model_favourable", "final_favourable")


def selection_report(filters: ReportFilters, *, full: bool) -> dict:
    """Selection rates per group before (the model's outcome) and after review (the final
    outcome), and the four-fifths ratios: the override report's selection part alone, from a
    lighter GROUP BY (the four counts it needs). Suppression as in the override report."""
    decisions = filters.decisions()
    counted = {
        k: v for k, v in measures(filters.model.favourable_label).items() if k in SELECTION_COUNTS
    }
    tables = []
    for attribute in filters.attributes:
        qs, keys = with_groups(decisions, [attribute])
        rows = qs.values(*keys).annotate(**counted).order_by()
        counts = {(row[keys[0]],): row for row in rows}
        ordered = sorted(counts, key=lambda k: (k[0] is None, k[0] or ""))
        reviewed = {k: counts[k]["reviewed"] for k in ordered}
        primary = {k for k in ordered if reviewed[k] < settings.REPORT_MIN_CELL}
        hidden = hidden_cells(reviewed, primary, [ordered], protect=not full)
        groups = []
        for key in ordered:
            c, hide = counts[key], key in hidden
            groups.append(
                {
                    "group": label(key),
                    "recorded": key[0] is not None,
                    "suppressed": hide,
                    **{n: c[n] if full or not hide else None for n in SELECTION_COUNTS},
                    "selection_rate_model": None if hide
                    else stats.rate(c["final_model_favourable"], c["final"]),
                    "selection_rate_final": None if hide
                    else stats.rate(c["final_favourable"], c["final"]),
                }
            )  # fmt: skip
        compared = [g for g in groups if g["recorded"] and not g["suppressed"]]
        tables.append({"attribute": attribute, "groups": groups, "selection": _selection(compared)})
    return {
        "model": filters.model.name,
        "favourable_label": filters.model.favourable_label,
        "filters": filters.as_dict(),
        "min_cell": settings.REPORT_MIN_CELL,
        "small_group_counts_shown": full,
        "tables": tables,
    }


def _notes(filters: ReportFilters) -> list[str]:
    notes = [
        "Override rates are among decisions settled by a person (a reviewer, an adjudicator or "
        "an appeal); intervals are Wilson 95 %; differences to the reference group have "
        "Newcombe (hybrid score) 95 % intervals; p-values are Holm-adjusted across every test "
        "in this report.",
        f"Groups with fewer than {settings.REPORT_MIN_CELL} reviewed decisions are suppressed: "
        "no rate, left out of tests and ratios, never merged into another group.",
        "Selection rates are over decisions with a final outcome: the model's outcome (before "
        "review) and the final outcome (after), for the same decisions.",
    ]
    if filters.sample == "random_audit":
        notes.insert(0, RANDOM_AUDIT_NOTE)
    else:
        notes.append(RANDOM_AUDIT_NOTE)
    notes.append(APPEALS_NOTE)
    return notes
