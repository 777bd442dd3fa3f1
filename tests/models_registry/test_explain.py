"""Explanations checked against numbers computed by hand from the fitted model.

Pure functions over small scikit-learn models: no database.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    KBinsDiscretizer,
    OneHotEncoder,
    PolynomialFeatures,
    StandardScaler,
)
from sklearn.tree import DecisionTreeClassifier

from models_registry import explain
from models_registry.scoring import frame
from tests.fixtures import TINY_FEATURES, tiny_pipeline

SPECS = [
    {"name": "income", "type": "number", "min": 0, "max": 200, "actionable": True},
    {"name": "debt", "type": "number", "min": 0, "max": 100, "actionable": True},
    {"name": "years", "type": "integer", "min": 0, "max": 40, "actionable": True},
    {"name": "region", "type": "category", "choices": ["north", "south", "east"]},
    {"name": "bankrupt", "type": "boolean"},
]
NUMERIC = ["income", "debt", "years"]
LABELS = ["approve", "deny"]

ROWS = [
    {"income": 120.0, "debt": 10.0, "years": 5, "region": "north", "bankrupt": False},
    {"income": 30.0, "debt": 60.0, "years": 2, "region": "east", "bankrupt": True},
    {"income": 80.0, "debt": 25.0, "years": 12, "region": "south", "bankrupt": False},
    {"income": 55.0, "debt": 30.0, "years": 8, "region": "north", "bankrupt": False},
    {"income": 60.0, "debt": 20.0, "years": 8, "region": "east", "bankrupt": True},
]


def training_data(n: int = 80, seed: int = 7) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "income": rng.uniform(0, 200, n),
            "debt": rng.uniform(0, 100, n),
            "years": rng.integers(0, 40, n).astype(float),
            "region": rng.choice(["north", "south", "east"], n),
            "bankrupt": (rng.random(n) < 0.2).astype(float),
        }
    )
    score = (
        0.03 * X["income"]
        - 0.05 * X["debt"]
        + 0.08 * X["years"]
        - 1.5 * (X["region"] == "east")
        - 2.0 * X["bankrupt"]
        + rng.normal(0, 0.5, n)
    )
    return X, np.where(score > 0.5, "approve", "deny")


def prepare(numeric=None) -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("scale", numeric if numeric is not None else StandardScaler(), NUMERIC),
            ("encode", OneHotEncoder(sparse_output=False), ["region"]),
            ("flag", "passthrough", ["bankrupt"]),
        ]
    )


def fit(*steps) -> Pipeline:
    X, y = training_data()
    return Pipeline([(f"step{i}", step) for i, step in enumerate(steps)]).fit(X, y)


@pytest.fixture(scope="module")
def logistic() -> Pipeline:
    return fit(prepare(), LogisticRegression(max_iter=1000))


@pytest.fixture(scope="module")
def forest() -> Pipeline:
    return tiny_pipeline(RandomForestClassifier(n_estimators=25, max_depth=5, random_state=0))


def proba(estimator, specs: list[dict], rows: list[dict]) -> np.ndarray:
    return np.asarray(estimator.predict_proba(frame(specs, rows)), dtype=float)


def p_of(estimator, specs: list[dict], row: dict, label: str) -> float:
    classes = [str(c) for c in estimator.classes_]
    return float(proba(estimator, specs, [row])[0, classes.index(label)])


def predicted(estimator, specs: list[dict], row: dict) -> str:
    return str(estimator.classes_[int(proba(estimator, specs, [row])[0].argmax())])


def log_odds(estimator, specs: list[dict], row: dict, favourable: str) -> float:
    p = p_of(estimator, specs, row, favourable)
    return math.log(p / (1 - p))


def run(estimator, specs, rows, *, favourable="approve", method=None, baseline=None, labels=None):
    """explain.explain as the services call it, with the method chosen as at upload."""
    baseline = baseline if baseline is not None else explain.default_baseline(specs)
    linear = explain.linear_view(estimator, specs, favourable, baseline)
    return explain.explain(
        estimator=estimator,
        method=method or (explain.LINEAR if linear is not None else explain.BASELINE),
        specs=specs,
        labels=labels or LABELS,
        favourable=favourable,
        baseline=baseline,
        rows=rows,
        outcomes=[predicted(estimator, specs, row) for row in rows],
        linear=linear,
    )


def by_feature(explanation: dict) -> dict[str, float]:
    return {c["feature"]: c["contribution"] for c in explanation["contributions"]}


# --- by hand ---------------------------------------------------------------------------------


def hand_linear(pipeline: Pipeline, row: dict, favourable: str) -> tuple[float, dict, dict]:
    """(base, contributions, slopes) from coef_, intercept_, the scaler and the one-hot columns,
    signed towards the favourable label."""
    columns, model = pipeline[0], pipeline[-1]
    scaler = columns.named_transformers_["scale"]
    categories = list(columns.named_transformers_["encode"].categories_[0])
    coef = model.coef_[0]
    sign = 1.0 if model.classes_[1] == favourable else -1.0
    contributions, slopes = {}, {}
    for j, name in enumerate(NUMERIC):
        z = (row[name] - scaler.mean_[j]) / scaler.scale_[j]
        contributions[name] = sign * coef[j] * z
        slopes[name] = sign * coef[j] / scaler.scale_[j]
    onehot = np.array([1.0 if row["region"] == c else 0.0 for c in categories])
    k = len(NUMERIC)
    contributions["region"] = sign * float(coef[k : k + len(categories)] @ onehot)
    contributions["bankrupt"] = sign * coef[k + len(categories)] * float(row["bankrupt"])
    return sign * float(model.intercept_[0]), contributions, slopes


def hand_flip_point(pipeline: Pipeline, row: dict, name: str, favourable: str) -> float:
    """The value of `name` at which the log-odds cross zero, everything else unchanged."""
    base, contributions, slopes = hand_linear(pipeline, row, favourable)
    logit = base + sum(contributions.values())
    return row[name] - logit / slopes[name]


def spec_of(specs: list[dict], name: str) -> dict:
    return next(spec for spec in specs if spec["name"] == name)


def with_actionable(specs: list[dict], *names: str, **bounds: tuple) -> list[dict]:
    """The schema with only `names` actionable, and some (min, max) bounds replaced."""
    out = []
    for spec in specs:
        spec = {**spec, "actionable": spec["name"] in names}
        if spec["name"] in bounds:
            spec["min"], spec["max"] = bounds[spec["name"]]
        out.append(spec)
    return out


def assert_flips(estimator, specs: list[dict], row: dict, counterfactual: dict) -> None:
    spec = spec_of(specs, counterfactual["feature"])
    assert spec.get("actionable"), counterfactual
    assert counterfactual["from"] == row[spec["name"]]
    if spec["type"] in ("number", "integer"):
        assert spec["min"] <= counterfactual["to"] <= spec["max"], counterfactual
    if spec["type"] == "integer":
        assert isinstance(counterfactual["to"], int), counterfactual
    changed = {**row, spec["name"]: counterfactual["to"]}
    assert predicted(estimator, specs, row) != predicted(estimator, specs, changed)
    assert predicted(estimator, specs, changed) == counterfactual["outcome"]


# --- contributions: linear_exact -------------------------------------------------------------


@pytest.mark.parametrize("favourable", ["approve", "deny"])
def test_it_matches_hand_computed_contributions_of_a_logistic_pipeline(logistic, favourable):
    results = run(logistic, SPECS, ROWS, favourable=favourable)
    for row, result in zip(ROWS, results, strict=True):
        base, contributions, _ = hand_linear(logistic, row, favourable)
        assert result["method"] == explain.LINEAR
        assert result["units"] == "log_odds"
        assert result["towards"] == favourable
        assert result["base"] == pytest.approx(base, abs=1e-6)
        assert by_feature(result) == pytest.approx(contributions, abs=1e-6)
        assert {c["feature"]: c["value"] for c in result["contributions"]} == row


@pytest.mark.parametrize("favourable", ["approve", "deny"])
def test_it_adds_base_and_contributions_up_to_the_models_log_odds(logistic, favourable):
    for row, result in zip(ROWS, run(logistic, SPECS, ROWS, favourable=favourable), strict=True):
        expected = log_odds(logistic, SPECS, row, favourable)
        assert result["log_odds"] == pytest.approx(expected, abs=1e-6)
        total = result["base"] + sum(by_feature(result).values())
        assert total == pytest.approx(expected, abs=1e-5)


def test_it_flips_every_sign_when_the_favourable_label_is_the_other_class(logistic):
    assert list(logistic.classes_) == ["approve", "deny"]  # approve is classes_[0]
    towards_first = run(logistic, SPECS, ROWS, favourable="approve")
    towards_second = run(logistic, SPECS, ROWS, favourable="deny")
    for first, second, row in zip(towards_first, towards_second, ROWS, strict=True):
        assert second["base"] == pytest.approx(-first["base"], abs=1e-9)
        assert second["log_odds"] == pytest.approx(-first["log_odds"], abs=1e-9)
        negated = {name: -value for name, value in by_feature(first).items()}
        assert by_feature(second) == pytest.approx(negated, abs=1e-9)
        # The direction is right, not merely opposite: coef_ points towards classes_[1].
        _, hand, _ = hand_linear(logistic, row, "deny")
        coef_towards_deny = logistic[-1].coef_[0][-1]  # bankrupt, passed through unscaled
        assert hand["bankrupt"] == pytest.approx(coef_towards_deny * float(row["bankrupt"]))


def test_it_ranks_contributions_by_size(logistic):
    for result in run(logistic, SPECS, ROWS):
        sizes = [abs(c["contribution"]) for c in result["contributions"]]
        assert sizes == sorted(sizes, reverse=True)


def test_it_matches_hand_computed_contributions_of_a_bare_logistic_regression():
    specs = [spec for spec in SPECS if spec["name"] in NUMERIC]
    X, y = training_data()
    model = LogisticRegression(max_iter=5000).fit(X[NUMERIC], y)
    for row, result in zip(ROWS, run(model, specs, ROWS, favourable="approve"), strict=True):
        # approve is classes_[0], so coef_ (towards deny) is negated.
        expected = {n: -model.coef_[0][j] * row[n] for j, n in enumerate(NUMERIC)}
        assert by_feature(result) == pytest.approx(expected, abs=1e-6)
        assert result["base"] == pytest.approx(-model.intercept_[0], abs=1e-6)
        assert result["log_odds"] == pytest.approx(log_odds(model, specs, row, "approve"), abs=1e-6)


# --- when the model is not (separably) linear ------------------------------------------------


NOT_LINEAR = {
    "decision tree": lambda: fit(prepare(), DecisionTreeClassifier(max_depth=4, random_state=0)),
    "random forest": lambda: fit(
        prepare(), RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0)
    ),
    "interactions": lambda: fit(
        prepare(
            make_pipeline(
                StandardScaler(), PolynomialFeatures(interaction_only=True, include_bias=False)
            )
        ),
        LogisticRegression(max_iter=1000),
    ),
    "pca": lambda: fit(prepare(), PCA(n_components=4), LogisticRegression(max_iter=1000)),
}


@pytest.mark.parametrize("kind", NOT_LINEAR)
def test_it_has_no_linear_view_of_a_model_that_is_not_separably_linear(kind):
    model = NOT_LINEAR[kind]()
    assert explain.linear_view(model, SPECS, "approve", explain.default_baseline(SPECS)) is None


@pytest.mark.parametrize("kind", ["interactions", "pca"])
def test_it_falls_back_to_replacing_with_the_baseline_when_features_are_mixed(kind):
    model = NOT_LINEAR[kind]()
    baseline = explain.default_baseline(SPECS)
    results = run(model, SPECS, ROWS, method=explain.LINEAR, baseline=baseline)
    for row, result in zip(ROWS, results, strict=True):
        assert result["method"] == explain.BASELINE
        p = p_of(model, SPECS, row, "approve")
        expected = {
            name: p - p_of(model, SPECS, {**row, name: baseline[name]}, "approve") for name in row
        }
        assert by_feature(result) == pytest.approx(expected, abs=1e-6)


def _binned() -> tuple[Pipeline, list[dict], list[dict]]:
    bins = KBinsDiscretizer(
        n_bins=6, encode="onehot-dense", quantile_method="averaged_inverted_cdf"
    )
    numeric = ColumnTransformer([("bins", bins, [0]), ("rest", StandardScaler(), [1, 2])])
    model = fit(prepare(numeric), LogisticRegression(max_iter=1000))
    rows = [{**ROWS[0], "income": income} for income in (5.0, 40.0, 90.0, 150.0, 199.0)]
    return model, SPECS, rows


def _with_missing_indicator() -> tuple[Pipeline, list[dict], list[dict]]:
    X, y = training_data()
    X.loc[::5, "debt"] = np.nan
    numeric = make_pipeline(SimpleImputer(add_indicator=True), StandardScaler())
    model = Pipeline([("prepare", prepare(numeric)), ("classify", LogisticRegression())])
    specs = [{**spec, "required": spec["name"] != "debt"} for spec in SPECS]
    return model.fit(X, y), specs, [*ROWS, *({**row, "debt": None} for row in ROWS)]


@pytest.mark.parametrize("build", [_binned, _with_missing_indicator], ids=["bins", "indicator"])
def test_it_never_reports_exact_log_odds_that_differ_from_the_models(build):
    # Column-wise preprocessing, but some columns move only far from the reference value (another
    # bin) or only for a missing value (the indicator): probing near the reference misses them.
    model, specs, rows = build()
    for row, result in zip(rows, run(model, specs, rows), strict=True):
        if result["method"] == explain.LINEAR:
            assert result["log_odds"] == pytest.approx(
                log_odds(model, specs, row, "approve"), abs=1e-6
            ), row


# --- contributions: replace_with_baseline ----------------------------------------------------


def test_it_measures_a_tree_feature_by_replacing_it_with_its_baseline(forest):
    baseline = {"income": 60.0, "debt": 40.0, "years": 10, "history": "poor", "bankrupt": True}
    rows = [
        {"income": 120.0, "debt": 10.0, "years": 5, "history": "good", "bankrupt": False},
        {"income": 40.0, "debt": 45.0, "years": 20, "history": "fair", "bankrupt": False},
    ]
    assert explain.linear_view(forest, TINY_FEATURES, "approve", baseline) is None
    for row, result in zip(rows, run(forest, TINY_FEATURES, rows, baseline=baseline), strict=True):
        p = p_of(forest, TINY_FEATURES, row, "approve")
        assert result["method"] == explain.BASELINE
        assert result["units"] == "probability"
        assert result["probability"] == pytest.approx(p, abs=1e-6)
        assert result["baseline"] == baseline
        contributions = by_feature(result)
        for name in ("income", "debt"):
            replaced = p_of(forest, TINY_FEATURES, {**row, name: baseline[name]}, "approve")
            assert contributions[name] == pytest.approx(p - replaced, abs=1e-6)
    assert any(abs(v) > 0.01 for v in by_feature(result).values())  # a real test, not all zeros


def test_it_reads_probabilities_in_the_estimators_class_order_not_the_declared_label_order(
    forest,
):
    # The registry checks that the declared labels and classes_ are the same set, not the same
    # order, so a model declared as ["deny", "approve"] is valid.
    rows = [
        {"income": 120.0, "debt": 10.0, "years": 5, "history": "good", "bankrupt": False},
        {"income": 20.0, "debt": 50.0, "years": 1, "history": "poor", "bankrupt": False},
    ]
    declared = run(forest, TINY_FEATURES, rows, labels=["deny", "approve"])
    ordered = run(forest, TINY_FEATURES, rows, labels=["approve", "deny"])
    assert declared == ordered
    for row, result in zip(rows, declared, strict=True):
        assert result["probability"] == pytest.approx(
            p_of(forest, TINY_FEATURES, row, "approve"), abs=1e-6
        )
        if result["counterfactual"] is not None:
            assert_flips(forest, TINY_FEATURES, row, result["counterfactual"])


# --- counterfactuals: linear -----------------------------------------------------------------


def cost(spec: dict, old: float, new: float) -> float:
    return abs(new - old) / (spec["max"] - spec["min"])


def test_it_changes_one_actionable_feature_within_range_and_flips_the_outcome(logistic):
    for row, result in zip(ROWS, run(logistic, SPECS, ROWS), strict=True):
        counterfactual = result["counterfactual"]
        assert counterfactual is not None, row
        assert set(counterfactual) == {"feature", "from", "to", "change", "outcome", "alternatives"}
        assert_flips(logistic, SPECS, row, counterfactual)
        for alternative in counterfactual["alternatives"]:
            assert_flips(logistic, SPECS, row, alternative)


def hand_costs(pipeline: Pipeline, specs: list[dict], row: dict) -> dict[str, float]:
    """For each actionable number or integer: the cost of the smallest in-range flipping value."""
    costs = {}
    for spec in specs:
        name = spec["name"]
        if not spec.get("actionable") or spec["type"] not in ("number", "integer"):
            continue
        point = hand_flip_point(pipeline, row, name, "approve")
        if spec["type"] == "integer":
            point = math.floor(point) + 1 if point > row[name] else math.ceil(point) - 1
        if spec["min"] <= point <= spec["max"]:
            costs[name] = cost(spec, row[name], point)
    return costs


def test_it_picks_the_smallest_change_as_a_fraction_of_the_features_range(logistic):
    for row, result in zip(ROWS, run(logistic, SPECS, ROWS), strict=True):
        expected = hand_costs(logistic, SPECS, row)
        proposed = [result["counterfactual"], *result["counterfactual"]["alternatives"]]
        costs = [cost(spec_of(SPECS, c["feature"]), c["from"], c["to"]) for c in proposed]
        assert [c["feature"] for c in proposed] == sorted(expected, key=expected.get), row
        assert costs == sorted(costs)
        for c, actual in zip(proposed, costs, strict=True):
            # Numbers stop within 0.01 past the flip point: a 0.01 / range difference in cost.
            assert actual == pytest.approx(expected[c["feature"]], abs=0.01 / 100 + 1e-9)


def test_it_stops_just_past_the_flip_point_of_a_number(logistic):
    specs = with_actionable(SPECS, "income")
    row = ROWS[3]
    point = hand_flip_point(logistic, row, "income", "approve")
    assert 0 < point < 200
    counterfactual = run(logistic, specs, [row])[0]["counterfactual"]
    assert counterfactual["feature"] == "income"
    assert abs(counterfactual["to"] - point) <= 0.01
    assert_flips(logistic, specs, row, counterfactual)
    step_back = counterfactual["to"] - math.copysign(0.01, counterfactual["change"])
    assert predicted(logistic, specs, {**row, "income": step_back}) == predicted(
        logistic, specs, row
    )
    assert counterfactual["change"] == pytest.approx(counterfactual["to"] - row["income"])


def test_it_gives_an_integer_feature_a_whole_number_one_step_past_the_flip(logistic):
    specs = with_actionable(SPECS, "years")
    row = ROWS[3]
    point = hand_flip_point(logistic, row, "years", "approve")
    assert 0 <= point <= 40 and not float(point).is_integer()
    counterfactual = run(logistic, specs, [row])[0]["counterfactual"]
    assert counterfactual["feature"] == "years"
    assert type(counterfactual["to"]) is int
    expected = math.floor(point) + 1 if point > row["years"] else math.ceil(point) - 1
    assert counterfactual["to"] == expected
    assert_flips(logistic, specs, row, counterfactual)
    one_less = counterfactual["to"] - (1 if counterfactual["to"] > row["years"] else -1)
    assert predicted(logistic, specs, {**row, "years": one_less}) == predicted(logistic, specs, row)


def test_it_never_proposes_changing_a_feature_that_is_not_actionable(logistic):
    # region is not actionable, although moving the last row to the north flips it.
    row = ROWS[-1]
    assert predicted(logistic, SPECS, row) == "deny"
    assert predicted(logistic, SPECS, {**row, "region": "north"}) == "approve"
    for result in run(logistic, SPECS, ROWS):
        counterfactual = result["counterfactual"]
        proposed = [counterfactual, *counterfactual["alternatives"]] if counterfactual else []
        assert {c["feature"] for c in proposed} <= {"income", "debt", "years"}


def test_it_proposes_a_level_of_an_actionable_boolean(logistic):
    specs = with_actionable(SPECS, "bankrupt", "debt", debt=(20, 30))
    row = {"income": 100.0, "debt": 20.0, "years": 8, "region": "east", "bankrupt": True}
    for debt in (20, 30):  # no in-range debt flips it
        assert predicted(logistic, specs, {**row, "debt": debt}) == "deny"
    counterfactual = run(logistic, specs, [row])[0]["counterfactual"]
    assert counterfactual["feature"] == "bankrupt" and counterfactual["to"] is False
    assert_flips(logistic, specs, row, counterfactual)


def test_it_has_no_counterfactual_when_no_single_in_range_change_flips_the_outcome(logistic):
    specs = with_actionable(SPECS, "income", "debt", "years")
    row = {"income": 0.0, "debt": 100.0, "years": 0, "region": "east", "bankrupt": True}
    for name in ("income", "debt", "years"):
        for bound in (spec_of(specs, name)["min"], spec_of(specs, name)["max"]):
            assert predicted(logistic, specs, {**row, name: bound}) == "deny", (name, bound)
    (result,) = run(logistic, specs, [row])
    assert result["counterfactual"] is None


def test_it_keeps_counterfactuals_inside_a_narrow_range_even_when_the_flip_lies_beyond(logistic):
    row = ROWS[3]
    point = hand_flip_point(logistic, row, "income", "approve")
    lo, hi = (point + 5, point + 20) if point < row["income"] else (point - 20, point - 5)
    specs = with_actionable(
        SPECS, "income", income=(min(lo, row["income"]), max(hi, row["income"]))
    )
    assert not spec_of(specs, "income")["min"] <= point <= spec_of(specs, "income")["max"]
    (result,) = run(logistic, specs, [row])
    assert result["counterfactual"] is None


# --- counterfactuals: searched (non-linear models) -------------------------------------------


def test_it_finds_a_flipping_counterfactual_for_a_tree_model_within_range(forest):
    specs = with_actionable(TINY_FEATURES, "income", "debt", "years")
    rows = [
        {"income": 120.0, "debt": 10.0, "years": 5, "history": "good", "bankrupt": False},
        {"income": 40.0, "debt": 45.0, "years": 20, "history": "fair", "bankrupt": False},
        {"income": 60.0, "debt": 30.0, "years": 3, "history": "poor", "bankrupt": False},
    ]
    outcomes = {predicted(forest, specs, row) for row in rows}
    assert outcomes == {"approve", "deny"}  # both directions are searched
    for row, result in zip(rows, run(forest, specs, rows), strict=True):
        assert result["method"] == explain.BASELINE
        counterfactual = result["counterfactual"]
        assert counterfactual is not None, row
        for proposal in [counterfactual, *counterfactual["alternatives"]]:
            assert_flips(forest, specs, row, proposal)


def test_it_searches_whole_numbers_for_an_integer_feature_of_a_tree_model(forest):
    specs = with_actionable(TINY_FEATURES, "years")
    row = {"income": 60.0, "debt": 30.0, "years": 3, "history": "good", "bankrupt": False}
    counterfactual = run(forest, specs, [row])[0]["counterfactual"]
    assert counterfactual is not None
    assert counterfactual["feature"] == "years"
    assert type(counterfactual["to"]) is int
    assert_flips(forest, specs, row, counterfactual)
