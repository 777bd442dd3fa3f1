"""The append-only, hash-chained audit log.

`audit.record(...)` is the one entry point for writing to it; call it inside the transaction
that makes the change it describes.
"""

from __future__ import annotations

from typing import Any

# These functions import audit.log when called, not here: this package is imported while
# Django loads its apps, before models (which audit.log needs) may be imported. This is the
# one function-level import the layering allows, for that reason.


def record(**kwargs: Any) -> Any:
    from audit.log import record as _record

    return _record(**kwargs)


def record_many(entries: list[dict[str, Any]]) -> Any:
    from audit.log import record_many as _record_many

    return _record_many(entries)


def stage_rows(rows: list[tuple[str, str, str, str, str]]) -> None:
    from audit.log import stage_rows as _stage_rows

    _stage_rows(rows)


def actor_label(actor: Any) -> str:
    from audit.log import actor_label as _actor_label

    return _actor_label(actor)


def batched() -> Any:
    """A context manager: the events recorded in the block are staged with one insert at its
    end (audit.log.batched)."""
    from audit.log import batched as _batched

    return _batched()
