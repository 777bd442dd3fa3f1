"""Inserting many new rows at once.

On PostgreSQL rows go in with COPY, the database's bulk-load path: Django's bulk_create sends
each column as an array that psycopg escapes in Python, which cost more than everything else
an ingest does. JSON columns are serialized with orjson (several times faster than `json` on
decisions' explanations and routing traces). Ids are drawn from the table's sequence first, so
callers can link rows (tasks to decisions) before they are written. Elsewhere (SQLite) it is
bulk_create.

COPY goes to psycopg's own cursor, past Django's wrapper, so its errors are translated here: a
duplicate key is a django.db.IntegrityError, as it is from any other query, and callers that
retry on it (ingest's race for an external_id) see it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson
from django.db import connections, router
from django.db.models import Field, JSONField, Model

# Below this many rows, COPY's extra round trips (ids, then the copy) cost more than they save.
COPY_FROM = 32


def insert(objs: Sequence[Model]) -> None:
    """Insert new model instances (all of one model) inside the caller's transaction."""
    if not objs:
        return
    model = type(objs[0])
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql" or len(objs) < COPY_FROM:
        model.objects.bulk_create(objs)
        return
    meta = model._meta
    _assign_ids(connection, meta, objs)
    fields = meta.concrete_fields
    prepare = [_json_text if _is_jsonb(f, connection) else _prepper(f, connection) for f in fields]
    quote = connection.ops.quote_name
    sql = f"COPY {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) FROM STDIN"
    columns = list(zip([f.attname for f in fields], prepare, strict=True))
    _copy(connection, sql, ([prep(getattr(obj, name)) for name, prep in columns] for obj in objs))
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias


def copies(model: type[Model]) -> bool:
    """Whether rows of this model go in with COPY (PostgreSQL) and can be given reserved ids."""
    return connections[router.db_for_write(model)].vendor == "postgresql"


def reserve_ids(wanted: dict[type[Model], int]) -> dict[type[Model], list[int]]:
    """Draw ids from several tables' sequences in one round trip (PostgreSQL), so rows can
    refer to each other before any is written and no RETURNING is needed. The ids are used
    or lost (a gap, as after any rollback); never given twice."""
    wanted = {model: n for model, n in wanted.items() if n > 0}
    if not wanted:
        return {}
    models = list(wanted)
    connection = connections[router.db_for_write(models[0])]
    parts, params = [], []
    for model in models:
        parts.append(
            "ARRAY(SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s))"
        )
        params += [model._meta.db_table, model._meta.pk.column, wanted[model]]
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts), params)
        arrays = cursor.fetchone()
    return dict(zip(models, [list(ids) for ids in arrays], strict=True))


def insert_tuples(model: type[Model], columns: Sequence[str], rows: Sequence[tuple]) -> None:
    """Insert plain tuples of ready database values (no model instances, no field preparation):
    for high-volume rows whose values are already what the columns hold."""
    if not rows:
        return
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        model.objects.bulk_create([model(**dict(zip(columns, row, strict=True))) for row in rows])
        return
    quote = connection.ops.quote_name
    names = ", ".join(quote(model._meta.get_field(c).column) for c in columns)
    _copy(connection, f"COPY {quote(model._meta.db_table)} ({names}) FROM STDIN", rows)


def _copy(connection: Any, sql: str, rows: Iterable[Sequence[Any]]) -> None:
    """Run a COPY ... FROM STDIN; the driver's errors come out as Django's."""
    with (
        connection.wrap_database_errors,
        connection.cursor() as cursor,
        cursor.cursor.copy(sql) as copy,
    ):
        for row in rows:
            copy.write_row(row)


def _json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _is_jsonb(field: Field, connection: Any) -> bool:
    # JSON stored as jsonb is re-encoded by the server anyway: orjson is the fastest way in.
    # A field that keeps its own text (reviews.fields.CanonicalJSONField) prepares itself.
    return isinstance(field, JSONField) and field.db_type(connection) == "jsonb"


def _prepper(field: Field, connection: Any) -> Callable[[Any], Any]:
    return lambda value: field.get_db_prep_save(value, connection)


def _assign_ids(connection, meta, objs: Sequence[Model]) -> None:
    pk = meta.pk
    missing = [obj for obj in objs if getattr(obj, pk.attname) is None]
    if not missing:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, pk.column, len(missing)],
        )
        ids = [row[0] for row in cursor.fetchall()]
    for obj, new_id in zip(missing, ids, strict=True):
        setattr(obj, pk.attname, new_id)
