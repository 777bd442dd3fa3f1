"""Fixed SQL read into model instances, for the few reads on hot paths (an answer's locks, a
claimed task's case): the ORM compiles a query anew on every call, which cost more Python than
everything else those requests do. Each column goes through the converters the ORM's own
reads apply on the database in use (JSON, datetimes and booleans on SQLite...), so the
instances are what the ORM would have built.

A read is a SELECT of several models' columns side by side (`Part`s, in order); a part whose
primary key comes back NULL (an outer join that found nothing) is None."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import models, transaction


@dataclass(frozen=True)
class Part:
    model: type[models.Model]
    alias: str
    leave_out: tuple[str, ...] = ()  # fields not read (deferred: read if ever touched)
    fields: tuple = field(init=False, repr=False)

    def __post_init__(self) -> None:
        chosen = tuple(f for f in self.model._meta.concrete_fields if f.name not in self.leave_out)
        object.__setattr__(self, "fields", chosen)

    @property
    def columns(self) -> str:
        return ", ".join(f'{self.alias}."{f.column}"' for f in self.fields)


def columns(*parts: Part) -> str:
    return ", ".join(part.columns for part in parts)


_converters: dict[tuple[str, type[models.Model], str], list] = {}


def _converters_of(connection, part: Part) -> list:
    """Per column read: (its Col expression, the converters the ORM applies to it on this
    database), found once per process."""
    key = (connection.vendor, part.model, ",".join(part.leave_out))
    if key not in _converters:
        found = []
        for f in part.fields:
            col = f.get_col(part.model._meta.db_table)
            found.append(
                (col, connection.ops.get_db_converters(col) + col.get_db_converters(connection))
            )
        _converters[key] = found
    return _converters[key]


def fetch(sql: str, params: Sequence, parts: Sequence[Part]) -> list[tuple]:
    """The rows of `sql`, each as a tuple of instances, one per part (None for a part whose
    primary key is NULL)."""
    connection = transaction.get_connection()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    found = []
    for row in rows:
        objs, start = [], 0
        for part in parts:
            n = len(part.fields)
            values = list(row[start : start + n])
            start += n
            pk_at = next(i for i, f in enumerate(part.fields) if f.primary_key)
            if values[pk_at] is None:
                objs.append(None)
                continue
            for i, (col, convs) in enumerate(_converters_of(connection, part)):
                for convert in convs:
                    values[i] = convert(values[i], col, connection)
            attnames = [f.attname for f in part.fields]
            objs.append(part.model.from_db(connection.alias, attnames, values))
        found.append(tuple(objs))
    return found


def lock_clause(of: str = "") -> str:
    """FOR UPDATE (OF the alias given) where the database has row locks; nothing on SQLite,
    which locks the whole database on a write."""
    connection = transaction.get_connection()
    if not connection.features.has_select_for_update:
        return ""
    return f" FOR UPDATE OF {of}" if of else " FOR UPDATE"


def insert_sql(
    connection,
    model: type[models.Model],
    columns: Sequence[str],
    *,
    rows: int = 1,
    skip_conflict_on: str | None = None,
) -> str:
    """A fixed `INSERT … VALUES (%s, …)[, …] [ON CONFLICT (…) DO NOTHING] RETURNING pk` of
    `rows` rows of the model's `columns` (field names), for the few inserts on hot paths
    (compiling an ORM insert per call cost more than the statement)."""
    quote = connection.ops.quote_name
    meta = model._meta
    row = "(" + ", ".join(["%s"] * len(columns)) + ")"
    conflict = (
        f" ON CONFLICT ({quote(meta.get_field(skip_conflict_on).column)}) DO NOTHING"
        if skip_conflict_on
        else ""
    )
    return (
        f"INSERT INTO {quote(meta.db_table)} "  # noqa: S608 (names from the model's metadata)
        f"({', '.join(quote(meta.get_field(c).column) for c in columns)}) "
        f"VALUES {', '.join([row] * rows)}{conflict} RETURNING {quote(meta.pk.column)}"
    )
