"""The decision log's appeal columns: status, when filed, the result once decided."""

from __future__ import annotations

import pytest

from appeals import services
from audit.canonical import format_time
from oversight.exports import iter_rows
from reviews.models import Decision
from tests.appeals.conftest import claim_appeal, file

pytestmark = pytest.mark.django_db


def test_the_export_carries_each_decisions_appeal(denied, approved, carol):
    appeal = file(denied)
    claim_appeal(carol)
    services.appeal_resolve(
        appeal_id=appeal.pk, senior=carol, result="upheld", reasons="The figures are right."
    )
    appeal.refresh_from_db()
    every = iter_rows(Decision.objects.order_by("id"), include_groups=False, pseudonymise=False)
    rows = {row["decision_id"]: row for row in every}
    assert rows[denied.pk]["appeal_status"] == "upheld"
    assert rows[denied.pk]["appeal_filed_at"] == format_time(appeal.filed_at)
    assert rows[denied.pk]["appeal_resolution"] == f"upheld {format_time(appeal.decided_at)}"
    assert rows[approved.pk]["appeal_status"] == rows[approved.pk]["appeal_resolution"] == ""
