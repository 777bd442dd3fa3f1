"""Group reports at a million decisions: the override report, the selection-rate report and the
PSI of ten features, each beside raw SQL GROUP BY queries that produce the same counts.

Setup (timed and printed, not a figure): a model with ten number features and two protected
attributes (race: three groups, sex: two), its version uploaded through the registry with a
drift baseline, and `--decisions` decisions generated in SQL over the last six days, 10 %
of them routed and settled by a reviewer (overrides more frequent for some groups), with their
protected attributes (two rows each); then VACUUM ANALYZE.

Measured, in the same run, each the median of `--repeat` runs after one warm-up, alternating
with its anchor:
1. the override report (oversight.reports.override_report, both attributes: per group counts,
   the weekly trend, the totals, and the statistics on them). Anchor: the same counts from
   hand-written SQL (one GROUP BY per attribute and per attribute × week, one total).
2. the selection-rate report (oversight.reports.selection_report). Anchor: one hand-written
   GROUP BY per attribute with the same counts.
3. the PSI of ten features and the score (oversight.drift.version_drift). Anchor: one
   hand-written `width_bucket` GROUP BY per feature and for the score.
Every anchor's counts are checked against the report's. Goal: each at most 2× its anchor.

    python -m bench.report [--decisions 1000000] [--repeat 3]
    BENCH_DB=oversight_bench_mine python -m bench.report   (a database of your own)
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import timedelta

import numpy as np

from bench.common import machine, postgres_version, setup_django, timer

FEATURES = [f"f{i}" for i in range(10)]
RACE = (
    "CASE WHEN (n * 7919) %% 100 < 60 THEN 'white' "
    "WHEN (n * 7919) %% 100 < 85 THEN 'black' ELSE 'hispanic' END"
)
SEX = "CASE WHEN (n * 104729) %% 100 < 45 THEN 'female' ELSE 'male' END"
GOAL = 2.0


def register() -> tuple:
    """The bench model and its version (a logistic regression on ten uniform features)."""
    import pandas as pd
    import skops.io as sio
    from django.contrib.auth.models import User
    from sklearn.linear_model import LogisticRegression

    from models_registry import drift_baseline as drift_shape
    from models_registry import services as registry

    specs = [{"name": f, "type": "number", "min": 0, "max": 100} for f in FEATURES]
    rng = np.random.default_rng(1)
    train = pd.DataFrame(rng.uniform(0, 100, (20_000, 10)), columns=FEATURES)
    labels = np.where(train["f0"] + train["f1"] > 100, "approve", "deny")
    estimator = LogisticRegression(max_iter=500).fit(train, labels)
    baseline = drift_shape.build(train, specs, scores=rng.uniform(0, 1, 20_000))
    owner = User.objects.create_user("bench-owner")
    model = registry.model_register(
        name="bench-report", labels=["approve", "deny"], favourable_label="approve",
        features=specs, protected_attributes=["race", "sex"], actor="bench",
    )  # fmt: skip
    version = registry.version_upload(
        model=model, artifact=sio.dumps(estimator), actor="bench", drift_baseline=baseline
    )
    registry.version_promote(version=version, actor="bench")
    return model, version, owner


def generate(model, version, owner, total: int) -> None:
    """`total` decisions in SQL, 10 % reviewed, with their protected attributes."""
    from django.db import connection

    features = ", ".join(f"'{f}', round((random() * 100)::numeric, 3)" for f in FEATURES)
    reviewed = "(n %% 10 = 0)"
    override = (
        f"({reviewed} AND random() < CASE {RACE} WHEN 'black' THEN 0.25 "
        "WHEN 'hispanic' THEN 0.18 ELSE 0.10 END)"
    )
    outcome = "CASE WHEN s >= 0.5 THEN 'approve' ELSE 'deny' END"
    flipped = "CASE WHEN s >= 0.5 THEN 'deny' ELSE 'approve' END"
    reasons = "CASE WHEN n %% 30 = 0 THEN 'random_audit' ELSE 'low_confidence' END"
    params = {"model": model.pk, "version": version.pk, "owner": owner.pk, "n": total}
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
        cursor.execute(
            f"""INSERT INTO reviews_decision (model_id, model_version_id, external_id,
                subject_ref, features, scored_by, model_outcome, confidence, probabilities,
                margin, explanation, policy_version, routing, routed, reason_tags, status,
                final_outcome, finalized_by, finalized_by_user_id, finalized_at, request_sha256,
                ingested_by_id, received_at)
            SELECT %(model)s, %(version)s, 'b-' || n, 's-' || n, jsonb_build_object({features}),
                'client', {outcome}, greatest(s, 1 - s),
                jsonb_build_object('approve', s, 'deny', 1 - s), abs(2 * s - 1), '{{}}', 1,
                CASE WHEN {reviewed}
                     THEN jsonb_build_object('reasons', jsonb_build_array({reasons}))
                     ELSE '{{"reasons": []}}' END,
                {reviewed}, CASE WHEN {reviewed} THEN ',' || {reasons} || ',' ELSE '' END, 'final',
                CASE WHEN {override} THEN {flipped} ELSE {outcome} END,
                CASE WHEN {reviewed} THEN 'reviewer' ELSE 'model' END,
                CASE WHEN {reviewed} THEN %(owner)s END, now(), repeat('0', 64), %(owner)s,
                now() - (n %% 518400) * interval '1 second'
            FROM (SELECT n, random() AS s FROM generate_series(1, %(n)s::bigint) AS n) AS g""",
            params,
        )
        for name, value in (("race", RACE), ("sex", SEX)):
            cursor.execute(
                f"""INSERT INTO reviews_protectedattribute (decision_id, name, value)
                SELECT id, %(name)s, {value} FROM
                  (SELECT id, substr(external_id, 3)::bigint AS n FROM reviews_decision
                   WHERE model_id = %(model)s) AS d""",
                {"name": name, "model": model.pk},
            )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE reviews_decision")
        cursor.execute("VACUUM ANALYZE reviews_protectedattribute")


# --- the anchors: hand-written SQL ----------------------------------------------------------

MEASURES = """count(*) AS decisions,
    count(*) FILTER (WHERE d.routed) AS routed,
    count(*) FILTER (WHERE d.finalized_by IN ('reviewer', 'adjudicator', 'appeal')) AS reviewed,
    count(*) FILTER (WHERE d.finalized_by IN ('reviewer', 'adjudicator', 'appeal')
                     AND d.final_outcome <> d.model_outcome) AS overridden,
    count(*) FILTER (WHERE d.finalized_by IN ('reviewer', 'adjudicator', 'appeal')
                     AND d.model_outcome = %(fav)s AND d.final_outcome <> %(fav)s) AS f2u,
    count(*) FILTER (WHERE d.finalized_by IN ('reviewer', 'adjudicator', 'appeal')
                     AND d.model_outcome <> %(fav)s AND d.final_outcome = %(fav)s) AS u2f,
    count(*) FILTER (WHERE d.status = 'final') AS final,
    count(*) FILTER (WHERE d.status = 'final' AND d.model_outcome = %(fav)s) AS final_model_fav,
    count(*) FILTER (WHERE d.status = 'final' AND d.final_outcome = %(fav)s) AS final_fav"""
SELECTION = """count(*) FILTER (WHERE d.finalized_by IN ('reviewer', 'adjudicator', 'appeal')),
    count(*) FILTER (WHERE d.status = 'final'),
    count(*) FILTER (WHERE d.status = 'final' AND d.model_outcome = %(fav)s),
    count(*) FILTER (WHERE d.status = 'final' AND d.final_outcome = %(fav)s)"""
JOIN = """FROM reviews_decision d LEFT JOIN reviews_protectedattribute p
    ON p.decision_id = d.id AND p.name = %(attribute)s WHERE d.model_id = %(model)s"""


def _fetch(sql: str, params: dict) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def raw_override_counts(model) -> dict:
    base = {"model": model.pk, "fav": model.favourable_label}
    out = {}
    for attribute in ("race", "sex"):
        params = {**base, "attribute": attribute}
        out[attribute] = _fetch(f"SELECT p.value, {MEASURES} {JOIN} GROUP BY p.value", params)
        out[f"{attribute}-weeks"] = _fetch(
            f"SELECT date_trunc('week', d.received_at AT TIME ZONE 'UTC'), p.value, {MEASURES} "
            f"{JOIN} GROUP BY 1, 2",
            params,
        )
    out["total"] = _fetch(
        f"SELECT {MEASURES} FROM reviews_decision d WHERE d.model_id = %(model)s", base
    )
    return out


def raw_selection_counts(model) -> dict:
    base = {"model": model.pk, "fav": model.favourable_label}
    return {
        attribute: _fetch(
            f"SELECT p.value, {SELECTION} {JOIN} GROUP BY p.value", {**base, "attribute": attribute}
        )
        for attribute in ("race", "sex")
    }


def raw_psi_counts(version, since) -> dict:
    params = {"version": version.pk, "since": since}
    where = (
        "FROM reviews_decision WHERE model_version_id = %(version)s AND received_at >= %(since)s"
    )
    out = {}
    for name, bins in version.drift_baseline["features"].items():
        out[name] = _fetch(
            f"SELECT width_bucket((features ->> %(f)s)::float8, %(edges)s::float8[]), count(*) "
            f"{where} GROUP BY 1",
            {**params, "f": name, "edges": bins["edges"]},
        )
    score = version.drift_baseline["score"]["edges"]
    out["score"] = _fetch(
        f"SELECT width_bucket((probabilities ->> 'approve')::float8, %(edges)s::float8[]), "
        f"count(*) {where} GROUP BY 1",
        {**params, "edges": score},
    )
    return out


# --- checks: the anchors' counts are the report's --------------------------------------------


def check_override(report: dict, raw: dict) -> None:
    names = ("decisions", "routed", "reviewed", "overridden", "fav_to_unfav", "unfav_to_fav",
             "final", "final_model_favourable", "final_favourable")  # fmt: skip
    for table in report["tables"]:
        ours = {g["values"][table["attribute"]]: [g[n] for n in names] for g in table["groups"]}
        theirs = {row[0]: list(row[1:]) for row in raw[table["attribute"]]}
        assert ours == theirs, (table["attribute"], ours, theirs)
    for trend in report["trend"]:
        ours = {(w["week"], c["group"]): (c["reviewed"], c["overridden"])
                for w in trend["weeks"] for c in w["groups"]}  # fmt: skip
        theirs = {(row[0].date().isoformat(), row[1]): (row[4], row[5])
                  for row in raw[f"{trend['attribute']}-weeks"]}  # fmt: skip
        assert ours == theirs, trend["attribute"]
    assert [report["totals"][n] for n in names] == list(raw["total"][0])


def check_selection(report: dict, raw: dict) -> None:
    names = ("reviewed", "final", "final_model_favourable", "final_favourable")
    for table in report["tables"]:
        ours = {g["group"]: [g[n] for n in names] for g in table["groups"]}
        theirs = {row[0]: list(row[1:]) for row in raw[table["attribute"]]}
        assert ours == theirs, table["attribute"]


def check_psi(drift: dict, raw: dict) -> None:
    assert drift["status"] == "ok", drift["status"]
    for feature in drift["features"]:
        theirs = dict(raw[feature["feature"]])
        assert [b["count"] for b in feature["bins"]] == [
            theirs.get(i, 0) for i in range(len(feature["bins"]))
        ], feature["feature"]


# --- timing ------------------------------------------------------------------------------------


def paired(ours: Callable[[], object], anchor: Callable[[], object], repeat: int) -> tuple:
    """Median seconds of each, alternating, after one warm-up of each; and their last results."""
    ours_result, anchor_result = ours(), anchor()
    ours_s, anchor_s = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        ours_result = ours()
        ours_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        anchor_result = anchor()
        anchor_s.append(time.perf_counter() - start)
    return statistics.median(ours_s), statistics.median(anchor_s), ours_result, anchor_result


def line(title: str, ours: float, anchor_name: str, anchor: float) -> None:
    ratio = ours / anchor if anchor else float("nan")
    print(f"  {title}: {ours * 1000:,.0f} ms")
    print(f"  anchor, {anchor_name}: {anchor * 1000:,.0f} ms")
    print(f"  ratio: {ratio:.2f}  (goal ≤ {GOAL:g})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    setup_django()

    from django.conf import settings
    from django.utils import timezone

    from oversight.drift import version_drift
    from oversight.report_filters import ReportFilters
    from oversight.reports import override_report, selection_report
    from reviews.models import Decision, ProtectedAttribute

    model, version, owner = register()
    with timer() as t:
        generate(model, version, owner, args.decisions)
    decisions = Decision.objects.filter(model=model)
    print(f"bench/report.py — {machine()}, {postgres_version()}")
    print(
        f"setup: {decisions.count():,} decisions ({decisions.filter(routed=True).count():,} "
        f"reviewed), {ProtectedAttribute.objects.count():,} protected attributes, generated in "
        f"SQL in {t['seconds']:.0f} s; median of {args.repeat} runs after a warm-up",
        flush=True,
    )
    filters = ReportFilters(model=model, attributes=["race", "sex"])

    ours, anchor, report, raw = paired(
        lambda: override_report(filters, full=True), lambda: raw_override_counts(model), args.repeat
    )
    check_override(report, raw)
    print("1. override report (2 attributes: groups, weekly trend, totals, statistics)")
    line("override_report", ours, "the same counts by hand-written GROUP BY (5 queries)", anchor)

    ours, anchor, report, raw = paired(
        lambda: selection_report(filters, full=True),
        lambda: raw_selection_counts(model),
        args.repeat,
    )
    check_selection(report, raw)
    print("2. selection-rate report (2 attributes, four-fifths ratios)")
    line("selection_report", ours, "the same counts by hand-written GROUP BY (2 queries)", anchor)

    now = timezone.now()
    since = now - timedelta(days=settings.DRIFT_WINDOW_DAYS)
    ours, anchor, drift, raw = paired(
        lambda: version_drift(version, now=now), lambda: raw_psi_counts(version, since), args.repeat
    )
    check_psi(drift, raw)
    worst = f"max PSI {drift['max_psi']:.4f} ({drift['worst']})"
    print(f"3. PSI of ten features and the score over {drift['decisions']:,} decisions ({worst})")
    line("version_drift", ours, "width_bucket GROUP BY per feature (11 queries)", anchor)


if __name__ == "__main__":
    main()
