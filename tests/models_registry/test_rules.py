"""High-stakes rules: validation names the bad part by path, evaluation is plain comparison.

Pure functions: no database.
"""

from __future__ import annotations

import copy

import pytest

from models_registry import rules
from models_registry.models import RoutingPolicy
from reviews import routing
from tests.fixtures import TINY_FEATURES

FIELDS = rules.field_types(TINY_FEATURES, ["approve", "deny"])
PREFIX = "high_stakes"


def cmp(field: str, op: str, value) -> dict:
    return {"field": field, "op": op, "value": value}


def nest(depth: int) -> dict:
    """A comparison at `depth`, inside depth - 1 single-part groups (the `when` is depth 1)."""
    cond = cmp("income", "gt", 100)
    for level in range(depth - 1):
        cond = {("all", "any")[level % 2]: [cond]}
    return cond


VALID = [
    {
        "name": "large denial",
        "description": "Denying a high earner or someone with a shaky history.",
        "when": {
            "all": [
                cmp("outcome", "eq", "deny"),
                {
                    "any": [
                        cmp("income", "ge", 150),
                        cmp("history", "in", ["fair", "poor"]),
                        cmp("bankrupt", "eq", True),
                    ]
                },
            ]
        },
    },
    {"name": "unsure", "when": cmp("confidence", "lt", 0.7)},
    {"name": "long history", "when": cmp("years", "ge", 20)},
    {"name": "not approved", "when": cmp("outcome", "ne", "approve")},
    {"name": "big number", "when": cmp("income", "gt", 10**400)},  # ints are never infinite
    {"name": "deep", "when": nest(rules.MAX_DEPTH)},
]


def rule_with(second: dict) -> list[dict]:
    """One rule whose `all` group's second part (path high_stakes.0.when.all.1) is `second`."""
    return [{"name": "r", "when": {"all": [cmp("outcome", "eq", "deny"), second]}}]


def errors_of(policy) -> dict[str, list[str]]:
    return rules.validate_rules(policy, FIELDS, prefix=PREFIX)


# --- validate_rules --------------------------------------------------------------------------


def test_it_accepts_valid_nested_all_and_any_rules():
    assert errors_of(VALID) == {}
    assert errors_of([]) == {}


def test_it_offers_outcome_confidence_and_every_feature_as_fields():
    assert set(FIELDS) == {spec["name"] for spec in TINY_FEATURES} | {"outcome", "confidence"}
    assert FIELDS["outcome"]["choices"] == ["approve", "deny"]
    assert (FIELDS["confidence"]["min"], FIELDS["confidence"]["max"]) == (0, 1)


BAD_COMPARISONS = {
    "unknown field": (cmp("salary", "gt", 1), "field", "salary"),
    "field that is not a string": (cmp(["income"], "gt", 1), "field", "['income']"),
    "bad op": (cmp("income", "gte", 1), "op", "must be one of eq, ne, lt, le, gt, ge, in"),
    "order on a category": (cmp("history", "lt", "good"), "op", "history is category"),
    "order on a boolean": (cmp("bankrupt", "ge", True), "op", "bankrupt is boolean"),
    "order on the outcome": (cmp("outcome", "gt", "approve"), "op", "outcome is category"),
    "string for a number": (cmp("income", "gt", "100"), "value", "finite number"),
    "boolean for a number": (cmp("income", "gt", True), "value", "finite number"),
    "infinity for a number": (cmp("confidence", "lt", float("inf")), "value", "finite number"),
    "nan for a number": (cmp("years", "eq", float("nan")), "value", "finite number"),
    "number for a boolean": (cmp("bankrupt", "eq", 1), "value", "true or false"),
    "unknown choice": (cmp("history", "eq", "excellent"), "value", "'excellent'"),
    "unknown outcome": (cmp("outcome", "eq", "maybe"), "value", "approve, deny"),
    "in with a string": (cmp("history", "in", "poor"), "value", "non-empty list"),
    "in with an empty list": (cmp("history", "in", []), "value", "non-empty list"),
    "in with a bad item": (cmp("history", "in", ["poor", "awful"]), "value", "'awful'"),
    "in with numbers of the wrong type": (cmp("years", "in", [1, "2"]), "value", "'2'"),
}


@pytest.mark.parametrize("case", BAD_COMPARISONS)
def test_it_names_a_bad_comparison_by_its_path(case):
    cond, part, words = BAD_COMPARISONS[case]
    errors = errors_of(rule_with(cond))
    assert list(errors) == [f"high_stakes.0.when.all.1.{part}"]
    assert len(errors[f"high_stakes.0.when.all.1.{part}"]) == 1
    assert words in errors[f"high_stakes.0.when.all.1.{part}"][0]


@pytest.mark.parametrize(
    "cond",
    [
        {"field": "income", "op": "gt"},
        {"field": "income", "op": "gt", "value": 1, "extra": 2},
        {"all": [cmp("income", "gt", 1)], "any": [cmp("income", "lt", 1)]},
        "income > 1",
        None,
    ],
    ids=["missing value", "extra key", "two groups", "a string", "null"],
)
def test_it_names_a_malformed_condition_by_its_path(cond):
    errors = errors_of(rule_with(cond))
    assert list(errors) == ["high_stakes.0.when.all.1"]
    assert '{"field", "op", "value"}' in errors["high_stakes.0.when.all.1"][0]


@pytest.mark.parametrize("group", ["all", "any"])
@pytest.mark.parametrize("parts", [[], "x", {"field": "income"}], ids=["empty", "str", "dict"])
def test_it_names_an_empty_or_non_list_group_by_its_key(group, parts):
    errors = errors_of(rule_with({group: parts}))
    assert errors == {
        f"high_stakes.0.when.all.1.{group}": ["must be a non-empty list of conditions"]
    }


def test_it_names_an_empty_top_level_group():
    assert list(errors_of([{"name": "r", "when": {"any": []}}])) == ["high_stakes.0.when.any"]


def test_it_names_every_bad_part_at_once():
    policy = [
        {
            "name": "r",
            "when": {"any": [cmp("salary", "gt", 1), {"all": [cmp("history", "le", "poor")]}]},
        },
        {"name": "r", "when": cmp("income", "gt", "lots")},
    ]
    assert set(errors_of(policy)) == {
        "high_stakes.0.when.any.0.field",
        "high_stakes.0.when.any.1.all.0.op",
        "high_stakes.1.name",
        "high_stakes.1.when.value",
    }


def test_it_names_a_duplicate_rule_name_at_the_second_rule():
    policy = [
        {"name": "unsure", "when": cmp("confidence", "lt", 0.7)},
        {"name": "other", "when": cmp("confidence", "lt", 0.6)},
        {"name": "unsure", "when": cmp("confidence", "lt", 0.5)},
    ]
    assert errors_of(policy) == {"high_stakes.2.name": ["duplicate rule name 'unsure'"]}


@pytest.mark.parametrize(
    "name", [None, "", "   ", "x" * 81, 7, ["a", "list"], {"an": "object"}], ids=repr
)
def test_it_names_a_missing_or_bad_rule_name(name):
    policy = [{"name": name, "when": cmp("income", "gt", 1)}, {"name": "ok", "when": nest(1)}]
    assert list(errors_of(policy)) == ["high_stakes.0.name"]


@pytest.mark.parametrize(
    "rule",
    [
        "unsure",
        ["name", "when"],
        {"name": "r", "when": cmp("income", "gt", 1), "priority": 1},
    ],
    ids=["string", "list", "unknown key"],
)
def test_it_names_a_rule_that_is_not_a_name_when_object(rule):
    errors = errors_of([{"name": "ok", "when": nest(1)}, rule])
    assert list(errors) == ["high_stakes.1"]


def test_it_names_a_rule_without_a_condition_at_its_when():
    assert list(errors_of([{"name": "r"}])) == ["high_stakes.0.when"]


@pytest.mark.parametrize("policy", [{"name": "r"}, "rules", None])
def test_it_wants_a_list_of_rules(policy):
    assert list(errors_of(policy)) == ["high_stakes"]


def test_it_names_the_first_condition_that_is_too_deep():
    assert errors_of([{"name": "r", "when": nest(rules.MAX_DEPTH)}]) == {}
    errors = errors_of([{"name": "r", "when": nest(rules.MAX_DEPTH + 1)}])
    path = "high_stakes.0.when.any.0.all.0.any.0.all.0.any.0.all.0"  # the 7th level
    assert list(errors) == [path]
    assert "too deep" in errors[path][0]


def test_it_refuses_a_rule_with_too_many_conditions():
    parts = [cmp("income", "gt", i) for i in range(rules.MAX_CONDITIONS)]
    assert errors_of([{"name": "r", "when": {"any": parts[:-1]}}]) == {}
    errors = errors_of([{"name": "r", "when": {"any": parts}}])
    assert list(errors) == [f"high_stakes.0.when.any.{rules.MAX_CONDITIONS - 1}"]


def test_it_counts_conditions_per_rule():
    parts = [cmp("income", "gt", i) for i in range(rules.MAX_CONDITIONS - 1)]
    policy = [{"name": f"r{i}", "when": {"all": parts}} for i in range(3)]
    assert errors_of(policy) == {}


def test_it_uses_the_prefix_it_is_given():
    errors = rules.validate_rules(rule_with(cmp("salary", "gt", 1)), FIELDS, prefix="policy.hs")
    assert list(errors) == ["policy.hs.0.when.all.1.field"]


def test_it_does_not_change_the_rules_it_validates():
    before = copy.deepcopy(VALID)
    errors_of(VALID)
    assert before == VALID


# --- evaluate --------------------------------------------------------------------------------

CONTEXT = {
    "income": 100.0,
    "debt": None,
    "years": 5,
    "history": "fair",
    "bankrupt": False,
    "outcome": "deny",
    "confidence": 0.8,
}

COMPARISONS = [
    ("income", "eq", 100, True),
    ("income", "eq", 99.5, False),
    ("income", "ne", 99.5, True),
    ("income", "ne", 100, False),
    ("income", "lt", 100, False),
    ("income", "lt", 100.01, True),
    ("income", "le", 100, True),
    ("income", "le", 99.99, False),
    ("income", "gt", 100, False),
    ("income", "gt", 99.99, True),
    ("income", "ge", 100, True),
    ("income", "ge", 100.01, False),
    ("years", "in", [1, 5, 9], True),
    ("years", "in", [1, 9], False),
    ("history", "eq", "fair", True),
    ("history", "ne", "fair", False),
    ("history", "in", ["fair", "poor"], True),
    ("history", "in", ["good"], False),
    ("bankrupt", "eq", False, True),  # false is a value, not a missing one
    ("bankrupt", "ne", True, True),
    ("bankrupt", "eq", True, False),
    ("outcome", "eq", "deny", True),
    ("outcome", "in", ["approve"], False),
    ("confidence", "lt", 0.9, True),
    ("confidence", "ge", 0.9, False),
    pytest.param("income", "gt", 10**400, False, id="income-gt-a-huge-int"),
]


@pytest.mark.parametrize(("field", "op", "value", "expected"), COMPARISONS)
def test_it_evaluates_each_operator(field, op, value, expected):
    assert errors_of([{"name": "r", "when": cmp(field, op, value)}]) == {}
    trace: list[dict] = []
    assert rules.evaluate(cmp(field, op, value), CONTEXT, trace) is expected
    assert trace == [
        {"field": field, "op": op, "value": value, "actual": CONTEXT[field], "result": expected}
    ]


@pytest.mark.parametrize(
    ("op", "value"),
    [("eq", 1), ("ne", 1), ("lt", 1), ("le", 1), ("gt", 1), ("ge", 1), ("in", [1, 2])],
)
@pytest.mark.parametrize("context", [CONTEXT, {}], ids=["null", "absent"])
def test_it_is_false_for_a_missing_value_whatever_the_op(op, value, context):
    trace: list[dict] = []
    assert rules.evaluate(cmp("debt", op, value), context, trace) is False
    assert trace == [{**cmp("debt", op, value), "actual": None, "result": False}]


TRUE, FALSE = cmp("income", "ge", 100), cmp("income", "lt", 100)


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ({"all": [TRUE, TRUE]}, True),
        ({"all": [TRUE, FALSE]}, False),
        ({"all": [FALSE, TRUE]}, False),
        ({"any": [FALSE, TRUE]}, True),
        ({"any": [TRUE, FALSE]}, True),
        ({"any": [FALSE, FALSE]}, False),
        ({"all": [TRUE, {"any": [FALSE, TRUE]}]}, True),
        ({"any": [FALSE, {"all": [TRUE, FALSE]}]}, False),
        ({"all": [TRUE, cmp("debt", "lt", 10)]}, False),
        ({"any": [TRUE, cmp("debt", "lt", 10)]}, True),
    ],
)
def test_it_combines_parts_with_all_and_any(cond, expected):
    assert rules.evaluate(cond, CONTEXT) is expected


@pytest.mark.parametrize("group", ["all", "any"])
def test_it_records_every_comparison_without_short_circuit(group):
    decisive = FALSE if group == "all" else TRUE  # settles the group on its own
    cond = {group: [decisive, cmp("years", "eq", 5), {"any": [TRUE, cmp("debt", "gt", 1)]}]}
    trace: list[dict] = []
    rules.evaluate(cond, CONTEXT, trace)
    assert [(t["field"], t["op"], t["result"]) for t in trace] == [
        ("income", decisive["op"], group == "any"),
        ("years", "eq", True),
        ("income", "ge", True),
        ("debt", "gt", False),
    ]
    assert [t["actual"] for t in trace] == [100.0, 5, 100.0, None]


def test_it_evaluates_without_a_trace():
    assert rules.evaluate(VALID[0]["when"], CONTEXT) is True
    assert rules.evaluate(VALID[0]["when"], {**CONTEXT, "outcome": "approve"}) is False


def test_it_routes_on_high_stakes_rules_and_records_every_rule():
    policy = RoutingPolicy(high_stakes=VALID[:2], confidence_threshold=0.0, random_audit_rate=0)
    route = routing.evaluate(
        policy,
        model_name="tiny",
        external_id="app-1",
        outcome="deny",
        confidence=0.9,
        margin=0.8,
        features={k: v for k, v in CONTEXT.items() if k not in ("outcome", "confidence")},
    )
    assert route.reasons == ["high_stakes"]
    (condition,) = [c for c in route.conditions if c["name"] == "high_stakes"]
    assert [(r["name"], r["fired"]) for r in condition["rules"]] == [
        ("large denial", True),
        ("unsure", False),
    ]
    assert len(condition["rules"][0]["conditions"]) == 4
    assert condition["rules"][1]["conditions"][0]["actual"] == 0.9


# --- audit_draw ------------------------------------------------------------------------------


def test_it_draws_the_same_number_for_the_same_model_and_external_id():
    first = routing.audit_draw("tiny", "app-00001")
    assert routing.audit_draw("tiny", "app-00001") == first
    assert 0 <= first < 1


def test_it_draws_independently_per_model_and_per_external_id():
    assert routing.audit_draw("tiny", "app-1") != routing.audit_draw("other", "app-1")
    assert routing.audit_draw("tiny", "app-1") != routing.audit_draw("tiny", "app-2")
    # The separator keeps ("ab", "c") and ("a", "bc") apart.
    assert routing.audit_draw("ab", "c") != routing.audit_draw("a", "bc")


def test_it_draws_roughly_uniformly():
    draws = [routing.audit_draw("tiny", f"app-{n:05d}") for n in range(20_000)]
    assert all(0 <= d < 1 for d in draws)
    assert 0.04 <= sum(d < 0.05 for d in draws) / len(draws) <= 0.06
    for decile in range(10):
        share = sum(decile / 10 <= d < (decile + 1) / 10 for d in draws) / len(draws)
        assert 0.09 <= share <= 0.11, decile


# --- describe_condition ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cond", "text"),
    [
        (cmp("income", "ge", 150), "income ≥ 150"),
        (cmp("confidence", "lt", 0.7), "confidence < 0.7"),
        (cmp("debt", "le", 20), "debt ≤ 20"),
        (cmp("years", "gt", 3), "years > 3"),
        (cmp("outcome", "eq", "deny"), "outcome is deny"),
        (cmp("outcome", "ne", "approve"), "outcome is not approve"),
        (cmp("history", "in", ["fair", "poor"]), "history is one of fair, poor"),
        ({"all": [cmp("income", "ge", 150)]}, "income ≥ 150"),
        (
            VALID[0]["when"],
            "(outcome is deny and "
            "(income ≥ 150 or history is one of fair, poor or bankrupt is True))",
        ),
    ],
)
def test_it_describes_a_condition_in_words(cond, text):
    assert rules.describe_condition(cond) == text
