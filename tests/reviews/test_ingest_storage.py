"""How an ingest stores its rows (issue 15, part 3): built once, as tuples; each explanation
encoded once to canonical JSON, hashed from and stored as that text; a bulk's statements do not
grow with its size; the active-learning budget spent by the transaction's last statement."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.db import connection, transaction
from django.db.models import TextField
from django.db.models.functions import Cast
from django.test.utils import CaptureQueriesContext

from audit.canonical import canonical_json
from audit.models import AuditEvent
from models_registry import services as registry
from reviews.models import ActiveLearningDay, Decision
from reviews.services import decisions_ingest
from reviews.services import ingest as ingest_module
from tests.fixtures import item
from tests.threads import post_at_once

pytestmark = pytest.mark.django_db

BULK = "/api/v1/decisions/bulk/"

TRICKY = {
    "method": "shap",
    "note": 'Zoë\'s café — 借款 ✓ "quoted" \\ back\nline',
    "floats": [0.1, 1 / 3, 1e-07, 2.5e-300, 1.7976931348623157e308, -0.0, 123456789.125],
    "ints": [0, -1, 2**53 + 1, 10**20],
    "nested": {"b": [True, False, None], "a": {"z": 1, "é": "ü"}},
    "empty": {"list": [], "dict": {}, "text": ""},
}


def _bulk(service, numbers, **overrides):
    response = service.client().post(
        BULK, {"items": [item(n, **overrides) for n in numbers]}, format="json"
    )
    assert response.status_code in (200, 201), response.json()
    return response.json()["items"]


def _stored_text(decision_id: int) -> str:
    return (
        Decision.objects.filter(pk=decision_id)
        .annotate(text=Cast("explanation", TextField()))
        .values_list("text", flat=True)
        .get()
    )


def test_the_decision_columns_are_the_models_in_order():
    assert (
        tuple(f.attname for f in Decision._meta.concrete_fields) == ingest_module.DECISION_COLUMNS
    )


@pytest.mark.parametrize("count", [1, 40])  # one row, and a COPY-sized bulk
def test_the_recorded_hash_is_the_hash_of_the_stored_text(tiny_model, service, count):
    results = _bulk(service, range(count))
    events = {
        int(e.object_id): json.loads(e.payload)
        for e in AuditEvent.objects.filter(action="decision.ingested")
    }
    assert len(events) == count
    for row in results:
        decision = Decision.objects.get(pk=row["id"])
        text = _stored_text(decision.pk)
        # Stored exactly as its canonical text, which is what was hashed into the event.
        assert text == canonical_json(decision.explanation)
        assert (
            events[decision.pk]["explanation_sha256"] == hashlib.sha256(text.encode()).hexdigest()
        )
        assert decision.explanation["contributions"]  # decoded on read: Python values
        assert isinstance(decision.routing["conditions"], list)


def test_stored_values_read_back_identically(tiny_model, service):
    (row,) = _bulk(service, [1])
    decision = Decision.objects.get(pk=row["id"])
    routing = {**decision.routing, "floats": [0.1, 1 / 3, 1e-07, 0.30000000000000004]}
    decision.explanation, decision.routing = TRICKY, routing
    decision.save(update_fields=["explanation", "routing"])
    again = Decision.objects.get(pk=decision.pk)
    assert again.explanation == TRICKY
    # The same floats (to the bit, -0.0 too), ints and lists; keys come back sorted, as stored.
    assert repr(again.explanation["floats"]) == repr(TRICKY["floats"])
    assert repr(again.explanation["ints"]) == repr(TRICKY["ints"])
    assert list(again.explanation) == sorted(TRICKY)
    assert again.routing == routing
    assert _stored_text(decision.pk) == canonical_json(TRICKY)
    assert Decision.objects.filter(pk=decision.pk).values_list("explanation", flat=True).get() == (
        TRICKY
    )
    # The routing trace stays queryable by key in SQL (exports read its reasons).
    assert (
        Decision.objects.filter(pk=decision.pk).values_list("routing__reasons", flat=True).get()
        == routing["reasons"]
    )


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_number_in_an_explanation_is_refused_and_nothing_changes(
    tiny_model, service, bad
):
    (row,) = _bulk(service, [1])
    decision = Decision.objects.get(pk=row["id"])
    before = _stored_text(decision.pk)
    decision.explanation = {"method": "x", "value": bad}
    with pytest.raises(ValueError, match="JSON compliant"), transaction.atomic():
        decision.save(update_fields=["explanation"])
    assert _stored_text(decision.pk) == before


def test_a_budget_spent_meanwhile_by_another_ingest_makes_it_plan_again(
    tiny_model, service, erin, monkeypatch
):
    registry.policy_update(
        model=tiny_model,
        changes={"active_learning_budget": 2, "active_learning_max_margin": 1.0},
        actor=erin,
        note="test",
    )
    _bulk(service, range(1, 3), features={"income": 60.0})  # spends the budget
    assert ActiveLearningDay.objects.get().used == 2
    reads = []
    real = ingest_module._budget_left

    def stale_then_real(policy, day, wanted):
        reads.append(wanted)
        # The first read is stale: as if another ingest had not yet spent the budget.
        return wanted if len(reads) == 1 else real(policy, day, wanted)

    monkeypatch.setattr(ingest_module, "_budget_left", stale_then_real)
    results = _bulk(service, range(10, 13), features={"income": 60.0})
    assert len(reads) == 2  # the stale plan was refused by the last statement, then replanned
    assert all(not r["routed"] for r in results)
    assert ActiveLearningDay.objects.get().used == 2
    assert Decision.objects.count() == 5
    assert AuditEvent.objects.filter(action="decision.ingested").count() == 5


@pytest.mark.postgres
def test_a_bulks_statements_do_not_grow_with_its_size(tiny_model, service, erin):
    registry.policy_update(
        model=tiny_model,
        changes={
            "active_learning_budget": 1000,
            "active_learning_max_margin": 1.0,
            "random_audit_rate": 50,
            "reviewers_required": 2,
        },
        actor=erin,
        note="test",
    )
    counts = []
    for first, size in ((0, 40), (1000, 400)):
        items = [item(n) for n in range(first, first + size)]
        with CaptureQueriesContext(connection) as queries:
            results = decisions_ingest(items=items, actor=service.user)
        assert len(results) == size
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    assert counts[1] <= 20, counts


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_bulks_share_the_active_learning_budget(tiny_model, service, erin):
    registry.policy_update(
        model=tiny_model,
        changes={"active_learning_budget": 7, "active_learning_max_margin": 1.0},
        actor=erin,
        note="test",
    )
    bodies = [
        {"items": [item(100 * b + n, features={"income": 60.0}) for n in range(40)]}
        for b in range(4)
    ]
    responses = post_at_once(service.client, BULK, bodies)
    assert [r.status_code for r in responses] == [201] * 4
    chosen = Decision.objects.filter(reason_tags__contains=",active_learning,").count()
    assert chosen == 7
    assert ActiveLearningDay.objects.get().used == 7
    assert Decision.objects.count() == 160


def _plan_nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


@pytest.mark.postgres
def test_the_idempotency_check_probes_the_unique_index_even_on_stale_statistics(
    tiny_model, service
):
    # Statistics taken when the model had 5 decisions, then 2,000 more: the planner believes
    # the model has a handful, and `external_id IN (…1,000…)` was planned as a scan of all
    # of the model's decisions. The check must probe (model, external_id) for each id instead.
    decisions_ingest(items=[item(n) for n in range(5)], actor=service.user)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE reviews_decision")
    for first in (100, 1100):
        decisions_ingest(items=[item(n) for n in range(first, first + 1000)], actor=service.user)
    items, _ = ingest_module.intake.parse([item(n) for n in range(5000, 6000)], actor=service.user)
    with CaptureQueriesContext(connection) as queries:
        assert ingest_module._existing(items, "items") == {}
    reads = [q["sql"] for q in queries if "reviews_decision" in q["sql"]]
    assert reads
    for sql in reads:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
            (plan,) = cursor.fetchone()[0]
        scans = [
            node
            for node in _plan_nodes(plan["Plan"])
            if node.get("Relation Name") == "reviews_decision"
        ]
        assert scans, plan
        for node in scans:
            # An index scan of the unique index, or a bitmap built from it alone.
            assert node["Node Type"] in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan")
            indexes = {n.get("Index Name") for n in _plan_nodes(node)} - {None}
            assert indexes == {"decision_external_id"}, plan
