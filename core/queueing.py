"""Handing work to Celery after the transaction that asked for it commits.

A hand-off can fail (the broker is down, the network blips). The work is never lost by that:
what asked for it wrote a row first (an export, a verification, an outbox message), and a
periodic sweep sends again what is still waiting. So a failed send is logged, not raised: the
request that committed the row must not turn into a 500 after the fact.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)


def send(task: Any, *args: Any) -> bool:
    """Send `task` now; False (and a log line) when the broker cannot take it."""
    try:
        task.delay(*args)
    except Exception:  # kombu's OperationalError, a refused connection, a DNS failure...
        logger.warning("could not hand %s%r to the broker; the sweep will retry", task.name, args)
        return False
    return True


def send_after_commit(task: Any, *args: Any) -> None:
    """Send `task` once the current transaction commits (at once outside of one)."""
    transaction.on_commit(lambda: send(task, *args))
