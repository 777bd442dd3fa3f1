"""Database-level protection of the audit log: triggers that refuse UPDATE, DELETE, TRUNCATE
on the events, the stored Merkle tree and the signed checkpoints (an event may be sealed once,
by the sealer); and read-only snapshots for long reads.

The application never changes either; these triggers make sure nothing else through an
ordinary connection does. (An owner of the database can drop them, which is why signed
checkpoints that outsiders keep exist on top of the chain.)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

EVENTS = "audit_auditevent"
# Tables that only ever grow: the events (sealed once, see below), the stored Merkle tree,
# its size history, the signed checkpoints and the witnesses' cosignatures.
TABLES = (
    EVENTS,
    "audit_checkpoint",
    "audit_merklenode",
    "audit_treestate",
    "audit_cosignature",
)
PERMIT = "audit_sealpermit"
# What a staged event carries from the moment it is recorded; sealing may not change it.
_RECORDED = ("id", "actor", "action", "object_type", "object_id", "payload", "format")


def _pg_refuse(table: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{table} is append-only: % is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""


def _pg_install(table: str) -> str:
    if table == EVENTS:
        return _pg_install_events()
    return (
        _pg_refuse(table)
        + f"""
DROP TRIGGER IF EXISTS {table}_append_only ON {table};
CREATE TRIGGER {table}_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only();
"""
    )


def _pg_install_events() -> str:
    """The events: never deleted; inserted staged (no seq) except by the sealer; updated only
    to seal a staged event, by the sealer (its permit row exists only in its own transaction),
    leaving what was recorded unchanged."""
    same = " AND ".join(
        f"NEW.{c} IS NOT DISTINCT FROM OLD.{c}" for c in (*_RECORDED, "recorded_at")
    )
    return (
        _pg_refuse(EVENTS)
        + f"""
CREATE OR REPLACE FUNCTION {EVENTS}_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.seq IS NULL OR EXISTS (SELECT 1 FROM {PERMIT}) THEN RETURN NEW; END IF;
    ELSIF TG_OP = 'UPDATE' AND OLD.seq IS NULL AND NEW.seq IS NOT NULL AND {same}
            AND EXISTS (SELECT 1 FROM {PERMIT}) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '{EVENTS} is append-only: % is refused (only the sealer seals an event, once)',
        TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
DROP TRIGGER IF EXISTS {EVENTS}_append_only ON {EVENTS};
DROP TRIGGER IF EXISTS {EVENTS}_guard ON {EVENTS};
CREATE TRIGGER {EVENTS}_guard
    BEFORE INSERT OR UPDATE OR DELETE ON {EVENTS}
    FOR EACH ROW EXECUTE FUNCTION {EVENTS}_guard();
CREATE TRIGGER {EVENTS}_append_only
    BEFORE TRUNCATE ON {EVENTS}
    FOR EACH STATEMENT EXECUTE FUNCTION {EVENTS}_append_only();
"""
    )


def _sqlite_install(table: str) -> list[str]:
    # SQLite has no TRUNCATE statement (its "truncate optimisation" is a DELETE, refused too).
    refuse = "BEGIN SELECT RAISE(ABORT, '{table} is append-only: {op} is refused'); END;"
    if table != EVENTS:
        return [
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
            + refuse.format(table=table, op=op)
            for op in ("UPDATE", "DELETE")
        ]
    permit = f"EXISTS (SELECT 1 FROM {PERMIT})"
    same = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in (*_RECORDED, "recorded_at"))
    return [
        f"CREATE TRIGGER IF NOT EXISTS {EVENTS}_no_update BEFORE UPDATE ON {EVENTS} "
        f"WHEN NOT (OLD.seq IS NULL AND NEW.seq IS NOT NULL AND {same} AND {permit}) "
        + refuse.format(table=EVENTS, op="UPDATE"),
        f"CREATE TRIGGER IF NOT EXISTS {EVENTS}_no_delete BEFORE DELETE ON {EVENTS} "
        + refuse.format(table=EVENTS, op="DELETE"),
        f"CREATE TRIGGER IF NOT EXISTS {EVENTS}_no_sealed_insert BEFORE INSERT ON {EVENTS} "
        f"WHEN NEW.seq IS NOT NULL AND NOT {permit} "
        + refuse.format(table=EVENTS, op="INSERT of a sealed event"),
    ]


_SQLITE_TRIGGERS = {
    EVENTS: ("no_update", "no_delete", "no_sealed_insert"),
}


def install_triggers(connection: BaseDatabaseWrapper, tables: tuple[str, ...] = TABLES) -> None:
    for table in tables:
        if connection.vendor == "postgresql":
            _execute(connection, [_pg_install(table)])
        else:
            _execute(connection, _sqlite_install(table))


def drop_triggers(connection: BaseDatabaseWrapper, tables: tuple[str, ...] = TABLES) -> None:
    for table in tables:
        if connection.vendor == "postgresql":
            _execute(
                connection,
                [
                    f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};",
                    f"DROP TRIGGER IF EXISTS {table}_guard ON {table};",
                ],
            )
        else:
            names = _SQLITE_TRIGGERS.get(table, ("no_update", "no_delete"))
            _execute(connection, [f"DROP TRIGGER IF EXISTS {table}_{name};" for name in names])


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
