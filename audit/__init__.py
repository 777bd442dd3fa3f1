"""The append-only, hash-chained audit log.

`audit.record(...)` is the one entry point for writing to it; call it inside the transaction
that makes the change it describes.
"""

from __future__ import annotations

from typing import Any


def record(**kwargs: Any) -> Any:
    from audit.log import record as _record

    return _record(**kwargs)


def record_many(entries: list[dict[str, Any]]) -> Any:
    from audit.log import record_many as _record_many

    return _record_many(entries)
