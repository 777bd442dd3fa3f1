"""Decision-log exports written by PostgreSQL: the same bytes (CSV) and the same table (Parquet)
as the Python writers in oversight.exports, which stay the reference (and the path on SQLite).

CSV: one `COPY (SELECT <the finished CSV line> …) TO STDOUT` streams the lines; Python only
takes off the COPY's own quoting, ends each line with "\\r\\n" as the csv module does and, when
pseudonymising, puts the pseudonym into its one field (the key never leaves this process: the
database sends the subject reference and where it goes in the line). Cells are made by the SQL
functions of migration oversight 0004 (floats as Python's repr, flat feature cells, canonical
JSON, the csv module's quoting); times are formatted as audit.canonical.format_time does.

Parquet: a `COPY … (FORMAT csv)` of the typed columns, parsed by pyarrow's CSV reader (in C++)
exports.CHUNK rows at a time and written in row groups of exports.ROW_GROUP rows: memory stays
bounded however many decisions are exported. The features' canonical JSON is made in Python
from the text the database sends (as the Python writer makes it; in plpgsql it cost ten
times more), the reviews' and protected attributes' by the database.

Reviews and protected attributes are aggregated once each (one GROUP BY joined in), not per
decision. The rows are the queryset's (the decisions the requester may see, filtered): it is
compiled into the query as the set of ids, so blind review hides here exactly what it hides
there. Run inside the export's read-only snapshot, these read what the Python writer would.
"""

from __future__ import annotations

import csv
import io
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import accumulate
from pathlib import Path

import psycopg
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import QuerySet

from appeals.models import Appeal
from audit.canonical import canonical_json
from core.lazy import lazy_module
from models_registry.models import MLModel, ModelVersion
from oversight import exports
from reviews.models import Decision, ProtectedAttribute, Review

# Imported by the Parquet writer only.
pa = lazy_module("pyarrow")
pacsv = lazy_module("pyarrow.csv")
pq = lazy_module("pyarrow.parquet")

TIME = """to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
BOOL = "CASE WHEN {} THEN 'True' ELSE 'False' END"
CLOSED = (Appeal.Status.UPHELD.value, Appeal.Status.OVERTURNED.value)


def available() -> bool:
    """Whether the database can write the export (PostgreSQL, migration oversight 0004)."""
    return connection.vendor == "postgresql"


def _lit(value: str) -> str:
    """A SQL string literal (names of features and groups come from model schemas)."""
    return "'" + value.replace("'", "''") + "'"


# --- the query --------------------------------------------------------------------------------


def _reasons() -> str:
    """The routing reasons joined by commas ("" when there are none), from the lateral's
    f.reasons (the trace is large: read once)."""
    return (
        "CASE WHEN jsonb_typeof(f.reasons) = 'array' THEN array_to_string(ARRAY("
        "SELECT jsonb_array_elements_text(f.reasons)), ',') ELSE '' END"
    )


def _overridden(d: str, true: str, false: str) -> str:
    return (
        f"CASE WHEN {d}.final_outcome <> '' AND {d}.final_outcome <> {d}.model_outcome "
        f"THEN {true} ELSE {false} END"
    )


def _resolution() -> str:
    closed = ", ".join(_lit(s) for s in CLOSED)
    decided = TIME.format("a.decided_at")
    return f"CASE WHEN a.status IN ({closed}) THEN a.status || ' ' || {decided} ELSE '' END"


def _review_json() -> str:
    """A review as canonical JSON, the keys sorted (exports._reviews' dict)."""
    return (
        """'{"created_at":' || to_json(""" + TIME.format("r.created_at") + """)::text"""
        """ || ',"kind":' || to_json(r.kind)::text"""
        """ || ',"model_hidden":' || CASE WHEN r.model_hidden THEN 'true' ELSE 'false' END"""
        """ || ',"outcome":' || to_json(r.outcome)::text"""
        """ || ',"rationale":' || to_json(r.rationale)::text"""
        """ || ',"reason_code":' || to_json(r.reason_code)::text"""
        """ || ',"reviewer_id":' || r.reviewer_id"""
        """ || ',"seconds_spent":' || oversight_float_repr(r.seconds_spent)"""
        """ || ',"verdict":' || to_json(r.verdict)::text || '}'"""
    )


def _from(qs: QuerySet[Decision], *, reviews_json: bool, groups: list[str] | None,
          groups_json: bool, lateral: str = "") -> tuple[str, list]:  # fmt: skip
    """FROM … WHERE … ORDER BY: the decisions of `qs` with their model, version, appeal, their
    reviews aggregated once (r.n, and r.reviews as a JSON list when asked) and, when `groups`
    is given, their protected attributes aggregated once (g.g0… per name, or g.groups as
    canonical JSON)."""
    ids_sql, params = qs.order_by().values("id").query.sql_with_params()
    review = Review._meta.db_table
    aggregated = "count(*) AS n"
    if reviews_json:
        aggregated += f", '[' || string_agg({_review_json()}, ',' ORDER BY r.id) || ']' AS reviews"
    sql = (
        f" FROM {Decision._meta.db_table} d{lateral}"
        f" JOIN {MLModel._meta.db_table} m ON m.id = d.model_id"
        f" LEFT JOIN {ModelVersion._meta.db_table} v ON v.id = d.model_version_id"
        f" LEFT JOIN {Appeal._meta.db_table} a ON a.decision_id = d.id"
        f" LEFT JOIN (SELECT r.decision_id, {aggregated} FROM {review} r"
        f" WHERE NOT r.is_gold AND r.decision_id IN ({ids_sql}) GROUP BY r.decision_id) r"
        f" ON r.decision_id = d.id"
    )
    ids_params, params = list(params), list(params)
    if groups is not None and (groups or groups_json):
        table = ProtectedAttribute._meta.db_table
        if groups_json:
            picked = (
                """'{' || string_agg(to_json(p.name)::text || ':' || to_json(p.value)::text, ','"""
                """ ORDER BY p.name COLLATE "C") || '}' AS groups"""
            )
        else:
            picked = ", ".join(
                f"max(p.value) FILTER (WHERE p.name = {_lit(name)}) AS g{i}"
                for i, name in enumerate(groups)
            )
        sql += (
            f" LEFT JOIN (SELECT p.decision_id, {picked} FROM {table} p"
            f" WHERE p.decision_id IN ({ids_sql}) GROUP BY p.decision_id) g"
            f" ON g.decision_id = d.id"
        )
        params += ids_params
    sql += f" WHERE d.id IN ({ids_sql}) ORDER BY d.id"
    return sql, params + ids_params


def _csv_cells(names: list[str]) -> tuple[list[str], list[str]]:
    """The SQL of each CSV cell, in the header's order (exports.csv_columns), and the features
    they read (from the lateral _features makes)."""
    fixed = {
        "decision_id": "d.id::text",
        "model": "oversight_csv(m.name)",
        "model_version": "v.number::text",
        "external_id": "oversight_csv(d.external_id)",
        "subject_ref": "oversight_csv(d.subject_ref)",
        "received_at": TIME.format("d.received_at"),
        "model_outcome": "oversight_csv(d.model_outcome)",
        "confidence": "oversight_float_repr(d.confidence)",
        "scored_by": "oversight_csv(d.scored_by)",
        "routed": BOOL.format("d.routed"),
        "routing_reasons": f"oversight_csv({_reasons()})",
        "policy_version": "d.policy_version::text",
        "status": "oversight_csv(d.status)",
        "final_outcome": "oversight_csv(d.final_outcome)",
        "finalized_by": "oversight_csv(d.finalized_by)",
        "finalized_at": TIME.format("d.finalized_at"),
        "review_count": "coalesce(r.n, 0)::text",
        "overridden": _overridden("d", "'True'", "'False'"),
        "appeal_status": "oversight_csv(a.status)",
        "appeal_filed_at": TIME.format("a.filed_at"),
        "appeal_resolution": _resolution(),
    }
    cells, group, features = [], 0, []
    for name in names:
        if name.startswith(exports.FEATURE_PREFIX):
            i = len(features)
            features.append(name[len(exports.FEATURE_PREFIX) :])
            cells.append(f"oversight_json_cell_of(f.k{i}, f.t{i}, f.j{i})")
        elif name.startswith(exports.GROUP_PREFIX):
            cells.append(f"oversight_csv(g.g{group})")
            group += 1
        else:
            cells.append(fixed[name])
    return cells, features


def _features(features: list[str]) -> str:
    """What cells read from JSON, looked up once per row (OFFSET 0 keeps the planner from
    copying the expressions into every place a cell uses them): the routing reasons and each
    feature's value (f0), then each value's type and text (f), so a feature is looked up in
    the document once, not three times."""
    picked = ["d.routing -> 'reasons' AS reasons"]
    picked += [f"d.features -> {_lit(name)} AS j{i}" for i, name in enumerate(features)]
    lateral = f" CROSS JOIN LATERAL (SELECT {', '.join(picked)} OFFSET 0) f"
    if not features:
        return lateral
    typed = ["f0.reasons"] + [
        f"f0.j{i}, jsonb_typeof(f0.j{i}) AS k{i}, f0.j{i}::text AS t{i}"
        for i in range(len(features))
    ]
    return f"{lateral}0 CROSS JOIN LATERAL (SELECT {', '.join(typed)} OFFSET 0) f"


# concat_ws takes at most 100 arguments (FUNC_MAX_ARGS): longer lines join groups of cells.
JOIN_GROUP = 90


def _joined(cells: list[str]) -> str:
    """The cells joined by commas, NULL as nothing (concat_ws: a third cheaper than
    array_to_string(ARRAY[…]) over a line's ~30 cells)."""
    if not cells:
        return "''"
    if len(cells) > JOIN_GROUP:
        groups = [cells[i : i + JOIN_GROUP] for i in range(0, len(cells), JOIN_GROUP)]
        return "concat_ws(',', " + ", ".join(_joined(g) for g in groups) + ")"
    return "concat_ws(',', " + ", ".join(f"coalesce(({c})::text, '')" for c in cells) + ")"


# --- CSV ----------------------------------------------------------------------------------------


@contextmanager
def _output(target: Path | exports.Sink) -> Iterator:
    """Where a CSV goes: a file, or a Sink straight into the package."""
    if isinstance(target, exports.Sink):
        yield target
        return
    with target.open("wb") as f:
        yield f


def write_csv(
    path: Path | exports.Sink,
    qs: QuerySet[Decision],
    names: list[str],
    tick: Callable[[int], None],
    *,
    alias: Callable[[str], str] | None = None,
) -> int:
    """decisions.csv, byte for byte what exports.write_csv writes from exports.iter_rows;
    `alias` (exports.pseudonymiser) pseudonymises the subject references."""
    groups = [n[len(exports.GROUP_PREFIX) :] for n in names if n.startswith(exports.GROUP_PREFIX)]
    include_groups = bool(groups) or "groups" in names
    cells, features = _csv_cells(names)
    source, params = _from(qs, reviews_json=False, groups=groups if include_groups else None,
                           groups_json=False, lateral=_features(features))  # fmt: skip
    if alias is not None and "subject_ref" in names:
        at = names.index("subject_ref")
        head, tail = _joined(cells[:at]), _joined(cells[at + 1 :])
        head = f"({head} || ',')" if at > 0 else "''"
        tail = f"(',' || {tail})" if at + 1 < len(cells) else "''"
        # The reference in hex (no quoting), where the pseudonym goes, then the line without it.
        line = (
            f"encode(convert_to(d.subject_ref, 'UTF8'), 'hex') || ',' || octet_length({head})"
            f" || ',' || {head} || {tail}"
        )
    else:
        alias, line = None, _joined(cells)
    query = f"COPY (SELECT {line}{source}) TO STDOUT (FORMAT csv, FORCE_QUOTE *)"
    count = 0
    with _output(path) as f:
        header = io.StringIO()
        csv.writer(header).writerow(names)
        f.write(header.getvalue().encode())
        for data in _copy(query, params, memoize=False):
            # "<line with its quotes doubled>"\n → the line, ended as the csv module ends it.
            line_bytes = bytes(data)[1:-2].replace(b'""', b'"')
            if alias is not None:
                ref, at_text, rest = line_bytes.split(b",", 2)
                cut = int(at_text)
                pseudonym = alias(bytes.fromhex(ref.decode()).decode()).encode()
                line_bytes = rest[:cut] + pseudonym + rest[cut:]
            f.write(line_bytes + b"\r\n")
            count += 1
            tick(count)
    return count


def _copy(query: str, params: list, *, memoize: bool = True) -> Iterator[bytes]:
    """The COPY's data messages (one row each), read in the caller's transaction (its
    snapshot), with the float output Python's repr is made from. `memoize=False`: without
    Memoize nodes (the CSV's lateral: the planner memoized it keyed on every row's features
    and routing, hashing them to look up values computed once per row anyway; PostgreSQL's
    CPU for the CSV's COPY fell by a tenth without. Not for Parquet: its export took longer
    in wall-clock time without, though PostgreSQL spent less CPU)."""
    connection.ensure_connection()
    with transaction.atomic():
        raw = connection.connection
        with connection.cursor() as cursor:
            # JIT would compile the long cell expressions for seconds and gain nothing.
            settings = "set_config('extra_float_digits', '1', true), set_config('jit', 'off', true)"
            if not memoize:
                settings += ", set_config('enable_memoize', 'off', true)"
            cursor.execute(f"SELECT {settings}")
        # COPY takes no bound parameters: the queryset's are bound client-side.
        with psycopg.ClientCursor(raw) as cursor, cursor.copy(query, params or None) as copy:
            while data := copy.read():
                yield data


# --- Parquet ------------------------------------------------------------------------------------


def _parquet_cells(names: list[str]) -> list[str]:
    """The SQL of each Parquet column, as CSV text pyarrow reads back into the column's type."""
    fixed = {
        "decision_id": "d.id",
        "model": "m.name",
        "model_version": "v.number",
        "external_id": "d.external_id",
        "subject_ref": "d.subject_ref",
        "received_at": TIME.format("d.received_at"),
        "features": "d.features::text",
        "model_outcome": "d.model_outcome",
        "confidence": "oversight_float_repr(d.confidence)",
        "scored_by": "d.scored_by",
        "routed": "d.routed",
        "routing_reasons": _reasons(),
        "policy_version": "d.policy_version",
        "status": "d.status",
        "final_outcome": "d.final_outcome",
        "finalized_by": "d.finalized_by",
        "finalized_at": f"coalesce({TIME.format('d.finalized_at')}, '')",
        "reviews": "coalesce(r.reviews, '[]')",
        "review_count": "coalesce(r.n, 0)",
        "overridden": _overridden("d", "true", "false"),
        "appeal_status": "coalesce(a.status, '')",
        "appeal_filed_at": f"coalesce({TIME.format('a.filed_at')}, '')",
        "appeal_resolution": _resolution(),
        "groups": "coalesce(g.groups, '{}')",
    }
    return [fixed[name] for name in names]


def write_parquet(
    path: Path,
    qs: QuerySet[Decision],
    names: list[str],
    tick: Callable[[int], None],
    *,
    alias: Callable[[str], str] | None = None,
) -> int:
    """decisions.parquet: the table exports.write_parquet writes from exports.iter_rows."""
    source, params = _from(qs, reviews_json="reviews" in names,
                           groups=[] if "groups" in names else None, groups_json=True,
                           lateral=_features([]))  # fmt: skip
    cells = ", ".join(_parquet_cells(names))
    # Empty text stays text: only the nullable integer columns are ever NULL (unquoted).
    query = f"COPY (SELECT {cells}{source}) TO STDOUT (FORMAT csv, FORCE_QUOTE *)"
    schema = pa.schema([(n, exports.arrow_type(n)) for n in names])
    pool = _pool()
    options = {
        "memory_pool": pool,
        "read_options": pacsv.ReadOptions(column_names=names),
        "parse_options": pacsv.ParseOptions(newlines_in_values=True),
        "convert_options": pacsv.ConvertOptions(
            column_types=schema,
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    }
    # Made here, per value: the subject's pseudonym, and the features' canonical JSON (from
    # the text the database reads them as, as exports.iter_rows does: a plpgsql canonical
    # form costs ~50 µs a row, Python's a few).
    made = {}
    if alias is not None and "subject_ref" in names:
        made[names.index("subject_ref")] = alias
    if "features" in names:
        made[names.index("features")] = _canonical_features
    count, rows, group, held = 0, [], [], 0
    with pq.ParquetWriter(path, schema, compression="zstd", memory_pool=pool) as writer:
        # CHUNK COPY rows (a data message each) parsed at a time, here in the snapshot's
        # thread, into a row group of ROW_GROUP rows: at most one row group is held.
        for data in _copy(query, params):
            rows.append(data)
            if len(rows) == exports.CHUNK:
                group.append(_table(rows, options, made))
                held, count, rows = held + len(rows), count + len(rows), []
                if held >= exports.ROW_GROUP:
                    _write_group(writer, group)
                    group, held = [], 0
                    tick(count)
        if rows:
            group.append(_table(rows, options, made))
            count += len(rows)
        if group:
            _write_group(writer, group)
        tick(count)
    return count


def _pool():
    """jemalloc's pool where pyarrow has it: it hands freed memory back to the system, where
    the default (mimalloc) keeps what each of the CSV reader's threads once used (at 100,000
    rows the export's peak RSS was ~50 MB higher with it)."""
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # pyarrow built without jemalloc (ArrowNotImplementedError)
        return pa.default_memory_pool()


def _canonical_features(text: str) -> str:
    return canonical_json(exports._loads(text))


def _table(rows: list, options: dict, made: dict) -> pa.Table:
    table = pacsv.read_csv(pa.py_buffer(b"".join(rows)), **options)
    for at, make in made.items():
        values = _strings([make(s) for s in table.column(at).to_pylist()])
        table = table.set_column(at, table.schema.field(at), values)
    return table


def _strings(values: list[str]):
    """A string array of `values`, made from its two buffers: pa.array() would import pandas
    (~70 MB of RSS, for an array-like check) the first time it is called."""
    data = [v.encode() for v in values]
    offsets = array("i", [0])
    offsets.extend(accumulate(map(len, data)))
    return pa.StringArray.from_buffers(
        len(data), pa.py_buffer(offsets), pa.py_buffer(b"".join(data))
    )


def _write_group(writer, tables: list) -> None:
    writer.write_table(pa.concat_tables(tables), row_group_size=exports.ROW_GROUP)


# --- reviews.csv ------------------------------------------------------------------------------


def write_reviews_csv(path: Path | exports.Sink, qs: QuerySet[Decision], *, by_name: bool) -> int:
    """reviews.csv, byte for byte what exports.write_reviews_csv writes."""
    ids_sql, params = qs.order_by().values("id").query.sql_with_params()
    reviewer = "oversight_csv(u.username)" if by_name else "r.reviewer_id::text"
    cells = {
        "decision_id": "r.decision_id::text",
        "kind": "oversight_csv(r.kind)",
        "reviewer": reviewer,
        "verdict": "oversight_csv(r.verdict)",
        "outcome": "oversight_csv(r.outcome)",
        "agrees_with_model": BOOL.format("r.agrees_with_model"),
        "reason_code": "oversight_csv(r.reason_code)",
        "rationale": "oversight_csv(r.rationale)",
        "seconds_spent": "oversight_float_repr(r.seconds_spent)",
        "model_hidden": BOOL.format("r.model_hidden"),
        "created_at": TIME.format("r.created_at"),
    }
    line = _joined([cells[name] for name in exports.REVIEW_COLUMNS])
    users = User._meta.db_table
    query = (
        f"COPY (SELECT {line} FROM {Review._meta.db_table} r"
        f" JOIN {users} u ON u.id = r.reviewer_id"
        f" WHERE NOT r.is_gold AND r.decision_id IN ({ids_sql})"
        f" ORDER BY r.decision_id, r.id) TO STDOUT (FORMAT csv, FORCE_QUOTE *)"
    )
    count = 0
    with _output(path) as f:
        header = io.StringIO()
        csv.writer(header).writerow(exports.REVIEW_COLUMNS)
        f.write(header.getvalue().encode())
        for data in _copy(query, list(params)):
            f.write(bytes(data)[1:-2].replace(b'""', b'"') + b"\r\n")
            count += 1
    return count


WRITERS = {"csv": write_csv, "parquet": write_parquet}
