"""Real threads on PostgreSQL: guesses sent at once are counted one by one, and none gets
past the lockout."""

from __future__ import annotations

from collections import Counter

import pytest

from appeals import services
from appeals.models import DecisionAccess
from audit.models import AuditEvent
from tests import threads

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

GUESSES = 12


def test_guesses_sent_at_once_lock_the_reference_after_five(denied, service, settings):
    settings.PORTAL_RATE_LIMIT = 1000  # the per-reference lockout is what is tested here
    issued = services.access_code_issue(decision=denied, actor=service.user)

    def guess(n: int) -> str:
        return services.portal_sign_in(
            reference=issued.reference, code=f"WRONG{n:04d}", client_address=f"192.0.2.{n}"
        ).outcome

    outcomes, errors = threads.at_once(guess, [(n,) for n in range(GUESSES)])

    assert errors == []
    assert Counter(outcomes) == {"wrong_code": 5, "locked": GUESSES - 5}
    access = DecisionAccess.objects.get(pk=issued.access.pk)
    assert (access.lockouts, access.failures) == (1, 0) and access.locked_until
    assert AuditEvent.objects.filter(action="portal.locked").count() == 1
    assert AuditEvent.objects.filter(action="portal.sign_in_failed").count() == GUESSES
    right = services.portal_sign_in(
        reference=issued.reference, code=issued.access_code, client_address="192.0.2.200"
    )
    assert right.outcome == "locked"
