from __future__ import annotations

import pytest

from models_registry.models import MLModel
from tests.fixtures import api
from tests.models_registry.test_registry_api import BODY
from tests.threads import at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 6


def test_it_registers_a_name_sent_by_many_at_once_once_and_refuses_the_rest(erin):
    def register():
        return api(erin).post("/api/v1/models/", BODY, format="json")

    responses, errors = at_once(register, [()] * THREADS)
    assert errors == []
    assert sorted(r.status_code for r in responses) == [201] + [409] * (THREADS - 1)
    assert MLModel.objects.count() == 1
