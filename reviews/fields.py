"""JSON kept as the canonical text it was hashed from.

A decision's explanation is hashed at ingest (its SHA-256 goes into the audit event) and never
read by key in SQL: no filter, report, drift measure or export looks inside it. So it is kept
as its canonical JSON text (audit.canonical.canonical_json: sorted keys, no whitespace, UTF-8,
NaN and infinities refused), encoded once: the bytes hashed are the bytes stored. On PostgreSQL
the column is `json`, which checks the syntax and keeps the text exactly as given (`jsonb`
parses it into a binary tree, which costs the server more on every insert and gives back other
text); elsewhere it is text, as every JSONField there. Reads decode it, so callers see the same
Python values as from a JSONField; `->`/`->>` still work on `json` in SQL if ever needed.

JSON that *is* queried in SQL (features and probabilities: drift and reports; the routing
trace's reasons: exports) stays a plain JSONField (`jsonb`).
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import expressions

from audit.canonical import canonical_json


class CanonicalJSON(str):
    """Canonical JSON text already encoded (and perhaps hashed): stored as it is."""

    __slots__ = ()

    @classmethod
    def of(cls, value: Any) -> CanonicalJSON:
        return cls(canonical_json(value))


class CanonicalJSONField(models.JSONField):
    """A JSONField stored as canonical JSON text (PostgreSQL `json`) and decoded on read."""

    description = "JSON stored as its canonical text"

    def db_type(self, connection: Any) -> str | None:
        if connection.vendor == "postgresql":
            return "json"
        return super().db_type(connection)

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if isinstance(value, expressions.Value) and isinstance(
            value.output_field, models.JSONField
        ):
            value = value.value
        elif hasattr(value, "as_sql"):
            return value
        return self.to_text(value)

    def get_db_prep_save(self, value: Any, connection: Any) -> Any:
        if value is None:
            return None
        return self.get_db_prep_value(value, connection)

    @staticmethod
    def to_text(value: Any) -> str | None:
        """The column's text for a Python value (None is SQL NULL)."""
        if value is None:
            return None
        if isinstance(value, CanonicalJSON):
            return str(value)
        return canonical_json(value)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        # psycopg decodes PostgreSQL `json` itself (with json.loads); text comes from SQLite.
        if not isinstance(value, str):
            return value
        return super().from_db_value(value, expression, connection)
