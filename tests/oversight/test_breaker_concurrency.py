"""Evaluations at the same moment (beat and a button, two workers) trip the breaker once and
raise each alert once, e-mailed once: PostgreSQL, real threads."""

from __future__ import annotations

import pytest

from audit.models import Alert
from models_registry.models import RoutingPolicy
from outbox.models import Message
from oversight import monitoring
from oversight.models import BreakerTrip
from tests.fixtures import register_tiny
from tests.oversight.reportdata import Row, store
from tests.threads import at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_four_trips_at_once_make_one(erin):
    model = register_tiny(erin, [])
    finding = monitoring.Finding("drift", "income PSI 0.9", {"feature": "income"}, trips=True)
    results, errors = at_once(
        lambda: monitoring.breaker_trip(model=model, finding=finding), [()] * 4
    )
    assert errors == []
    assert sum(r is not None for r in results) == 1
    assert BreakerTrip.objects.count() == 1
    assert RoutingPolicy.objects.filter(model=model).count() == 2
    assert Alert.objects.filter(kind="breaker_tripped").count() == 1


def test_evaluations_at_once_raise_each_alert_once(erin, dave):
    dave.email = "dave@example.org"
    dave.save()
    model = register_tiny(erin, [])
    rows = [Row({"race": "a"}, "approve", "deny", "reviewer")] * 30
    rows += [Row({"race": "a"}, "approve", "approve", "reviewer")] * 30
    rows += [Row({"race": "b"}, "approve", "approve", "reviewer")] * 80
    store(model, rows)
    _, errors = at_once(lambda: monitoring.model_evaluate(model=model), [()] * 3)
    assert errors == []
    kinds = sorted(Alert.objects.values_list("kind", flat=True))
    assert kinds == ["four_fifths", "override_gap"]
    assert Message.objects.filter(kind="email").count() == 2
