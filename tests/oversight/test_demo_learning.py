from __future__ import annotations

import pytest

from learning.models import RetrainingRun
from oversight import demo_learning
from tests.learning.common import ingest, settle

pytestmark = pytest.mark.django_db


def test_the_demo_retrains_once_when_people_have_labelled_enough(tiny_model, service, erin, alice):
    decisions = ingest(tiny_model, service, erin, n=25)
    assert demo_learning.load(tiny_model) is None  # no labels yet
    for i, decision in enumerate(decisions):
        settle(decision, "deny" if i % 3 == 0 else "approve", alice)
    run = demo_learning.load(tiny_model)
    assert run is not None and run.requested_by == erin
    assert demo_learning.load(tiny_model) is None
    assert RetrainingRun.objects.count() == 1
