"""Database-level protection of the audit log: triggers that refuse UPDATE, DELETE, TRUNCATE.

The application never changes an event; these triggers make sure nothing else through an
ordinary connection does either. (An owner of the database can drop them, which is why
signed checkpoints that outsiders keep exist on top of the chain.)
"""

from __future__ import annotations

from django.db.backends.base.base import BaseDatabaseWrapper

TABLE = "audit_auditevent"

_PG_INSTALL = f"""
CREATE OR REPLACE FUNCTION {TABLE}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{TABLE} is append-only: % is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE};
CREATE TRIGGER {TABLE}_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_append_only();
"""
_PG_DROP = f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE};"

# SQLite has no TRUNCATE statement (its "truncate optimisation" is a DELETE, which is refused).
_SQLITE_INSTALL = [
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_no_{op.lower()} BEFORE {op} ON {TABLE}
        BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only: {op} is refused'); END;"""
    for op in ("UPDATE", "DELETE")
]
_SQLITE_DROP = [f"DROP TRIGGER IF EXISTS {TABLE}_no_{op};" for op in ("update", "delete")]


def install_triggers(connection: BaseDatabaseWrapper) -> None:
    statements = [_PG_INSTALL] if connection.vendor == "postgresql" else _SQLITE_INSTALL
    _execute(connection, statements)


def drop_triggers(connection: BaseDatabaseWrapper) -> None:
    statements = [_PG_DROP] if connection.vendor == "postgresql" else _SQLITE_DROP
    _execute(connection, statements)


def _execute(connection: BaseDatabaseWrapper, statements: list[str]) -> None:
    if connection.vendor not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"no append-only triggers for {connection.vendor}")
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
