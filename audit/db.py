"""Database-level protection of the audit log: triggers that refuse UPDATE, DELETE, TRUNCATE
on the events and on the signed checkpoints; and read-only snapshots for long reads.

The application never changes either; these triggers make sure nothing else through an
ordinary connection does. (An owner of the database can drop them, which is why signed
checkpoints that outsiders keep exist on top of the chain.)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

TABLES = ("audit_auditevent", "audit_checkpoint")


def _pg_install(table: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{table} is append-only: % is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
DROP TRIGGER IF EXISTS {table}_append_only ON {table};
CREATE TRIGGER {table}_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only();
"""


def _sqlite_install(table: str) -> list[str]:
    # SQLite has no TRUNCATE statement (its "truncate optimisation" is a DELETE, refused too).
    return [
        f"""CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} is append-only: {op} is refused'); END;"""
        for op in ("UPDATE", "DELETE")
    ]


def install_triggers(connection: BaseDatabaseWrapper, tables: tuple[str, ...] = TABLES) -> None:
    for table in tables:
        if connection.vendor == "postgresql":
            _execute(connection, [_pg_install(table)])
        else:
            _execute(connection, _sqlite_install(table))


def drop_triggers(connection: BaseDatabaseWrapper, tables: tuple[str, ...] = TABLES) -> None:
    for table in tables:
        if connection.vendor == "postgresql":
            _execute(connection, [f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};"])
        else:
            _execute(
                connection,
                [f"DROP TRIGGER IF EXISTS {table}_no_{op};" for op in ("update", "delete")],
            )


def _execute(connection: BaseDatabaseWrapper, statements: list[str]) -> None:
    if connection.vendor not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"no append-only triggers for {connection.vendor}")
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


@contextmanager
def read_only_snapshot() -> Iterator[bool]:
    """Run the block in one REPEATABLE READ, READ ONLY transaction on PostgreSQL: everything
    read inside sees the database as of its first query, however long the block takes.

    Yields whether it opened one. It does not on SQLite (a transaction there would hold the
    database's write lock for the whole read), nor inside a caller's transaction, whose own
    snapshot then applies. Nothing can be written through the default connection inside.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield False
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield True


@contextmanager
def read_only_snapshot_with_writer() -> Iterator[tuple[bool, BaseDatabaseWrapper]]:
    """read_only_snapshot, and a connection through which to write what must be seen while
    it is open (a job's progress and heartbeat): a second connection, in autocommit, when a
    snapshot was opened; the default connection otherwise."""
    with read_only_snapshot() as isolated:
        if not isolated:
            yield False, connection
            return
        side = connection.copy()
        try:
            yield True, side
        finally:
            side.close()
