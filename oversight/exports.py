"""Decision-log exports: the rows, the writers (CSV, JSON Lines, Parquet), the package.

Rows are read in chunks (a server-side cursor on PostgreSQL) and written as they come, so
memory stays flat however many decisions are exported; on PostgreSQL they are read in one
read-only snapshot (consistent_read). A package is a zip holding the data file,
`manifest.json` (filters, row count, the data file's SHA-256, the checkpoint the export was
cut at, the log's size when the rows were read, and `notes` saying what each means) and,
when asked, the audit bundle that `python -m audit.verify` checks offline.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import re
import secrets
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from django.db.models import Exists, OuterRef, QuerySet, TextField
from django.db.models.functions import Cast
from django.utils.dateparse import parse_datetime

from appeals.models import Appeal
from audit.canonical import canonical_json, format_time
from audit.db import read_only_snapshot_with_writer
from audit.log import iter_events, row_text
from core import jobs
from core.lazy import lazy_module
from models_registry.models import MLModel
from oversight.models import Export
from reviews.models import REASONS, Decision, ProtectedAttribute, Review

# Imported by the Parquet writer only (pyarrow is ~70 MB of a process's RSS).
pa = lazy_module("pyarrow")
pq = lazy_module("pyarrow.parquet")

CHUNK = 2000
# Parquet row groups: large enough that a million rows make a handful of groups (readers
# pay per group), small enough that one buffered group stays a few tens of MB.
ROW_GROUP = 25_000
FILTER_KEYS = {"since", "until", "model", "version", "status", "routed", "reason", "groups"}


# --- filters ---------------------------------------------------------------------------------


def check_filters(raw: Any) -> tuple[dict, dict[str, list[str]]]:
    """Validate export filters; returns (clean, errors keyed `filters.<name>`)."""
    if raw in (None, ""):
        return {}, {}
    if not isinstance(raw, dict):
        return {}, {"filters": ["must be an object"]}
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    for key in sorted(set(raw) - FILTER_KEYS):
        errors[f"filters.{key}"] = [
            f"is not a filter; filters are {', '.join(sorted(FILTER_KEYS))}"
        ]
    for key in ("since", "until"):
        if raw.get(key) not in (None, ""):
            moment = _moment(str(raw[key]))
            if moment is None or moment.tzinfo is None:
                errors[f"filters.{key}"] = ["must be an ISO 8601 time with a time zone"]
            else:
                clean[key] = moment.isoformat()
    _simple(raw, clean, errors)
    return clean, errors


def _moment(text: str) -> datetime | None:
    """The time, or None when it is not one (parse_datetime raises on well-formed impossible
    ones, such as month 13)."""
    try:
        return parse_datetime(text)
    except ValueError:
        return None


def _simple(raw: dict, clean: dict, errors: dict) -> None:
    if raw.get("model") not in (None, ""):
        clean["model"] = str(raw["model"])
    if raw.get("version") is not None:
        if not isinstance(raw["version"], int) or isinstance(raw["version"], bool):
            errors["filters.version"] = ["must be a version number"]
        else:
            clean["version"] = raw["version"]
    if raw.get("status") not in (None, ""):
        if raw["status"] not in Decision.Status.values:
            errors["filters.status"] = [f"must be one of {', '.join(Decision.Status.values)}"]
        else:
            clean["status"] = raw["status"]
    if raw.get("routed") is not None:
        if not isinstance(raw["routed"], bool):
            errors["filters.routed"] = ["must be true or false"]
        else:
            clean["routed"] = raw["routed"]
    if raw.get("reason") not in (None, ""):
        if raw["reason"] not in REASONS:
            errors["filters.reason"] = [f"must be one of {', '.join(REASONS)}"]
        else:
            clean["reason"] = raw["reason"]
    groups = raw.get("groups")
    if groups not in (None, {}):
        if not isinstance(groups, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in groups.items()
        ):
            errors["filters.groups"] = ['must map attributes to values, e.g. {"race": "black"}']
        else:
            clean["groups"] = dict(groups)


def decisions(base: QuerySet[Decision], filters: dict) -> QuerySet[Decision]:
    qs = base
    if "since" in filters:
        qs = qs.filter(received_at__gte=datetime.fromisoformat(filters["since"]))
    if "until" in filters:
        qs = qs.filter(received_at__lt=datetime.fromisoformat(filters["until"]))
    if "model" in filters:
        qs = qs.filter(model__name=filters["model"])
    if "version" in filters:
        qs = qs.filter(model_version__number=filters["version"])
    for key in ("status", "routed"):
        if key in filters:
            qs = qs.filter(**{key: filters[key]})
    if "reason" in filters:
        qs = qs.filter(reason_tags__contains=f",{filters['reason']},")
    for name, value in filters.get("groups", {}).items():
        member = ProtectedAttribute.objects.filter(decision=OuterRef("pk"), name=name, value=value)
        qs = qs.filter(Exists(member))
    return qs.order_by("id")


# --- rows ---------------------------------------------------------------------------------------


@contextmanager
def consistent_read(export_id: int) -> Iterator[tuple[bool, jobs.Heartbeat]]:
    """Read an export's rows in one snapshot (audit.db.read_only_snapshot). Yields (whether
    the rows are a consistent snapshot, the job's heartbeat, which also records progress:
    `beat(progress=40)`).

    Neither can be written in that read-only transaction (nor would anyone see it before it
    ends), so they go through a second connection in autocommit while it is open."""
    with read_only_snapshot_with_writer() as (isolated, writer):
        yield isolated, jobs.Heartbeat(writer, Export, export_id)


@dataclass(slots=True)
class Extra:
    """What a row's columns make their values from besides the decision's own fields."""

    alias: Callable[[str], str]  # the subject reference as exported (pseudonymised or not)
    reviews: list[dict]
    groups: dict[str, str]
    appeal: tuple | None  # (status, filed at, decided at), or None: not appealed


# How a column makes its value: from the field it read (None if it reads none), the row so
# far (the columns before it, as exported) and the Extra.
Make = Callable[[Any, dict, Extra], Any]


@dataclass(frozen=True)
class Column:
    """One column of the decision log. `read`: the field the query reads for it (a Decision
    field, a lookup through a relation, or one of READ_ANNOTATIONS); `make`: how its value is
    made, the field as read when None; `arrow`: its Parquet type (the name of pyarrow's
    factory, pa.<arrow>()); `as_json`: written as
    canonical JSON text in CSV and Parquet (JSON Lines keeps the value); `groups`: protected
    attributes, only in the exports of those who may see them."""

    name: str
    read: str | None = None
    make: Make | None = None
    arrow: str = "string"
    as_json: bool = False
    groups: bool = False


def _time(value: Any, row: dict, extra: Extra) -> str:
    return format_time(value) if value else ""


# orjson turns integers past 64 bits into floats; such texts (rare) go to the json module.
_LONG_DIGITS = re.compile(r"\d{19,}")


def _loads(text: str) -> Any:
    return json.loads(text) if _LONG_DIGITS.search(text) else orjson.loads(text)


def _appeal_status(value: Any, row: dict, extra: Extra) -> str:
    return extra.appeal[0] if extra.appeal else ""


def _appeal_filed_at(value: Any, row: dict, extra: Extra) -> str:
    return format_time(extra.appeal[1]) if extra.appeal else ""


def _appeal_resolution(value: Any, row: dict, extra: Extra) -> str:
    """Once decided, the result and when: "overturned 2026-11-29T…Z"."""
    if not extra.appeal or extra.appeal[0] not in (Appeal.Status.UPHELD, Appeal.Status.OVERTURNED):
        return ""
    status, _, decided_at = extra.appeal
    return f"{status} {format_time(decided_at)}"


# The decision log's columns, in their order. The query's fields, the rows, the CSV header,
# the JSON Lines keys and the Parquet schema all come from this one table.
COLUMNS_TABLE = (
    Column("decision_id", "id", arrow="int64"),
    Column("model", "model__name"),
    Column("model_version", "model_version__number", arrow="int64"),
    Column("external_id", "external_id"),
    Column("subject_ref", "subject_ref", lambda v, row, x: x.alias(v)),
    Column("received_at", "received_at", _time),
    # Read as JSON text for orjson to decode: several times faster than the field's decoding.
    Column("features", "features_text", lambda v, row, x: _loads(v), as_json=True),
    Column("model_outcome", "model_outcome"),
    Column("confidence", "confidence", arrow="float64"),
    Column("scored_by", "scored_by"),
    Column("routed", "routed", arrow="bool_"),
    # Only the reasons are read out of the routing trace, by the database.
    Column("routing_reasons", "routing__reasons", lambda v, row, x: ",".join(v or [])),
    Column("policy_version", "policy_version", arrow="int64"),
    Column("status", "status"),
    Column("final_outcome", "final_outcome"),
    Column("finalized_by", "finalized_by"),
    Column("finalized_at", "finalized_at", _time),
    Column("reviews", make=lambda v, row, x: x.reviews, as_json=True),
    Column("review_count", make=lambda v, row, x: len(x.reviews), arrow="int32"),
    Column("overridden", arrow="bool_", make=lambda v, row, x: bool(row["final_outcome"])
           and row["final_outcome"] != row["model_outcome"]),
    Column("appeal_status", make=_appeal_status),
    Column("appeal_filed_at", make=_appeal_filed_at),
    Column("appeal_resolution", make=_appeal_resolution),
    Column("groups", make=lambda v, row, x: x.groups, as_json=True, groups=True),
)  # fmt: skip
COLUMNS = [c.name for c in COLUMNS_TABLE if not c.groups]
JSON_COLUMNS = {c.name for c in COLUMNS_TABLE if c.as_json}
ARROW_TYPES = {c.name: c.arrow for c in COLUMNS_TABLE}
READ = tuple(c.read for c in COLUMNS_TABLE if c.read)
READ_ANNOTATIONS = {"features_text": Cast("features", TextField())}


def pseudonymiser(enabled: bool, key: bytes | None = None) -> Callable[[str], str]:
    """A keyed hash per export: the same subject gets the same pseudonym within one export and
    different ones across exports. The key is never stored (nor sent to the database); `key`
    is for tests that compare two writers."""
    if not enabled:
        return lambda ref: ref
    key = key or secrets.token_bytes(32)
    return lambda ref: "p-" + hmac.new(key, ref.encode(), hashlib.sha256).hexdigest()[:20]


def iter_rows(
    qs: QuerySet[Decision],
    *,
    include_groups: bool,
    pseudonymise: bool,
    alias: Callable[[str], str] | None = None,
) -> Iterator[dict]:
    """One dict per decision, with its reviews (and protected attributes when allowed).

    Per-row Python work is what an export costs, so the database does what it can (the
    columns' `read`), and a column whose value is its field as read costs nothing more."""
    alias = alias or pseudonymiser(pseudonymise)
    qs = qs.annotate(**READ_ANNOTATIONS)
    chunk: list[tuple] = []
    for row in qs.values_list(*READ).iterator(chunk_size=CHUNK):
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield from _rows_of(chunk, include_groups, alias)
            chunk = []
    yield from _rows_of(chunk, include_groups, alias)


def _rows_of(
    chunk: list[tuple], include_groups: bool, alias: Callable[[str], str]
) -> Iterator[dict]:
    if not chunk:
        return
    # The chunk's id range, not a list of 2,000 ids: the chunks come in id order, so the ranges
    # are disjoint and an export reads each review at most once; rows outside `ids` (filtered
    # out) are dropped here.
    ids = {row[0] for row in chunk}
    within = {"decision_id__gte": chunk[0][0], "decision_id__lte": chunk[-1][0]}
    reviews = _reviews(within, ids)
    groups = _groups(within, ids) if include_groups else {}
    appeals = _appeals(within)
    # Per column: its name, where its field is in the row read (None: it reads none), its make.
    plan = [
        (c.name, READ.index(c.read) if c.read else None, c.make)
        for c in COLUMNS_TABLE
        if include_groups or not c.groups
    ]
    for values in chunk:
        extra = Extra(
            alias, reviews.get(values[0], []), groups.get(values[0], {}), appeals.get(values[0])
        )
        row: dict[str, Any] = {}
        for name, at, make in plan:
            value = None if at is None else values[at]
            row[name] = value if make is None else make(value, row, extra)
        yield row


def _reviews(within: dict, ids: set[int]) -> dict[int, list[dict]]:
    reviews = defaultdict(list)
    for review in (
        Review.objects.filter(**within, is_gold=False)
        .order_by("id")
        .values(
            "decision_id",
            "reviewer_id",
            "kind",
            "verdict",
            "outcome",
            "reason_code",
            "rationale",
            "seconds_spent",
            "model_hidden",
            "created_at",
        )
    ):
        decision_id = review.pop("decision_id")
        if decision_id not in ids:
            continue
        review["created_at"] = format_time(review["created_at"])
        reviews[decision_id].append(review)
    return reviews


def _groups(within: dict, ids: set[int]) -> dict[int, dict[str, str]]:
    groups = defaultdict(dict)
    for decision_id, name, value in ProtectedAttribute.objects.filter(**within).values_list(
        "decision_id", "name", "value"
    ):
        if decision_id in ids:
            groups[decision_id][name] = value
    return groups


def _appeals(within: dict) -> dict[int, tuple]:
    """(status, filed at, decided at) of the chunk's appeals (one per decision at most)."""
    return {
        decision_id: (status, filed_at, decided_at)
        for decision_id, status, filed_at, decided_at in Appeal.objects.filter(**within)
        .values_list("decision_id", "status", "filed_at", "decided_at")
        .iterator()
    }


# --- writers --------------------------------------------------------------------------------


def columns(include_groups: bool) -> list[str]:
    return [c.name for c in COLUMNS_TABLE if include_groups or not c.groups]


def _cell(name: str, value: Any) -> Any:
    if name in JSON_COLUMNS:
        return canonical_json(value)
    return value


def write_csv(
    path: Path, rows: Iterator[dict], names: list[str], tick: Callable[[int], None]
) -> int:
    """`names` as csv_columns gives them: a feature or protected attribute per column."""
    count = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(names)
        for row in rows:
            writer.writerow([_csv_cell(n, row) for n in names])
            count += 1
            tick(count)
    return count


def write_jsonl(
    path: Path, rows: Iterator[dict], names: list[str], tick: Callable[[int], None]
) -> int:
    count = 0
    with path.open("wb") as f:
        for row in rows:
            f.write(_json_line({n: row[n] for n in names}))
            count += 1
            tick(count)
    return count


def _json_line(row: dict) -> bytes:
    try:
        return orjson.dumps(row) + b"\n"
    except TypeError:  # an integer past 64 bits (orjson refuses it): the json module keeps it
        return json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def write_parquet(
    path: Path, rows: Iterator[dict], names: list[str], tick: Callable[[int], None]
) -> int:
    """Rows become Arrow batches CHUNK at a time, written as row groups of ROW_GROUP rows: at
    most one row group is held in memory."""
    schema = pa.schema([(n, arrow_type(n)) for n in names])
    count, chunk, group = 0, [], []
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for row in rows:
            chunk.append(row)
            count += 1
            group_full = count % ROW_GROUP == 0
            if len(chunk) == CHUNK or group_full:
                group.append(_batch(chunk, names, schema))
                chunk = []
                tick(count)
            if group_full:
                _write_group(writer, group, schema)
                group = []
        if chunk:
            group.append(_batch(chunk, names, schema))
        if group:
            _write_group(writer, group, schema)
        tick(count)
    return count


def _write_group(writer, batches: list, schema) -> None:
    writer.write_table(pa.Table.from_batches(batches, schema=schema), row_group_size=ROW_GROUP)


def arrow_type(name: str):
    """A column's Parquet type."""
    return getattr(pa, ARROW_TYPES[name])()


def _batch(rows: list[dict], names: list[str], schema):
    data = {n: [_cell(n, row[n]) for row in rows] for n in names}
    return pa.RecordBatch.from_pydict(data, schema=schema)


WRITERS = {"csv": write_csv, "jsonl": write_jsonl, "parquet": write_parquet}


# --- CSV: flat cells --------------------------------------------------------------------------
#
# A spreadsheet reads cells, not JSON: in CSV the features and the protected attributes are a
# column each (`feature.income`, `group.race`), and the reviews go to reviews.csv beside the
# decisions, one row per review (`review_count` stays in decisions.csv). JSON Lines and
# Parquet keep the table's columns, nested values included.

FEATURE_PREFIX, GROUP_PREFIX = "feature.", "group."
NESTED_IN_CSV = {"features": FEATURE_PREFIX, "groups": GROUP_PREFIX, "reviews": None}


def csv_columns(qs: QuerySet[Decision], include_groups: bool) -> list[str]:
    """The CSV header: COLUMNS_TABLE's columns, the features in place of `features` (every
    feature of the exported models, in their schema's order), the protected attributes in
    place of `groups`, and no `reviews` (reviews.csv has them)."""
    models = MLModel.objects.filter(pk__in=qs.values("model_id")).order_by("name")
    features = list(dict.fromkeys(s["name"] for m in models for s in m.features))
    groups = sorted({name for m in models for name in m.protected_attributes})
    expanded = {"features": [FEATURE_PREFIX + name for name in features],
                "groups": [GROUP_PREFIX + name for name in groups], "reviews": []}  # fmt: skip
    return [name for column in columns(include_groups) for name in expanded.get(column, [column])]


def _csv_cell(name: str, row: dict) -> Any:
    if name.startswith(FEATURE_PREFIX):
        return _flat(_get(row.get("features"), name[len(FEATURE_PREFIX) :]))
    if name.startswith(GROUP_PREFIX):
        return _flat(_get(row.get("groups"), name[len(GROUP_PREFIX) :]))
    return _cell(name, row[name])


def _get(values: Any, key: str) -> Any:
    return values.get(key) if isinstance(values, dict) else None


def _flat(value: Any) -> Any:
    """A cell: numbers and text as they are, none as empty, anything nested (a legacy row) as
    canonical JSON."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return canonical_json(value)
    return value


REVIEW_COLUMNS = (
    "decision_id",
    "kind",
    "reviewer",
    "verdict",
    "outcome",
    "agrees_with_model",
    "reason_code",
    "rationale",
    "seconds_spent",
    "model_hidden",
    "created_at",
)


def write_reviews_csv(path: Path, qs: QuerySet[Decision], *, by_name: bool) -> int:
    """reviews.csv: one row per review of the exported decisions (known-answer checks left
    out, as in decisions.csv), oldest first per decision. The reviewer by user name when
    `by_name` (auditors), else by user id, as in the `reviews` column of the other formats."""
    reviewer = "reviewer__username" if by_name else "reviewer_id"
    fields = [reviewer if c == "reviewer" else c for c in REVIEW_COLUMNS]
    reviews = (
        Review.objects.filter(decision_id__in=qs.values("id"), is_gold=False)
        .order_by("decision_id", "id")
        .values_list(*fields)
    )
    at = REVIEW_COLUMNS.index("created_at")
    count = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(REVIEW_COLUMNS)
        for values in reviews.iterator(chunk_size=CHUNK):
            row = list(values)
            row[at] = format_time(row[at])
            writer.writerow(row)
            count += 1
    return count


# --- the package ----------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_bundle_events(path: Path, size: int) -> None:
    """events.jsonl of the offline verifier: every event up to the checkpoint, streamed."""
    with path.open("wb") as f:
        for row in iter_events(until=size):
            text = row_text(row)
            f.write(orjson.dumps({"seq": row[0], "canonical": text, "hash": row[8]}) + b"\n")


def open_package(target: Path) -> zipfile.ZipFile:
    """The export's zip, open for writing: the data file, reviews.csv, the manifest and the
    bundle go in, in that order (finish_package writes the last two)."""
    return zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True)


class Sink:
    """A file written straight into an open package as it is made (a zip entry, compressed
    while the database writes the next rows), buffered; its SHA-256 kept for the manifest."""

    FLUSH = 1 << 20  # bytes buffered before they go to the compressor

    def __init__(self, entry: Any, name: str) -> None:
        self.name, self._entry = name, entry
        self._buffer = bytearray()
        self._digest = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= self.FLUSH:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self._digest.update(self._buffer)
            self._entry.write(self._buffer)
            self._buffer.clear()

    def sha256(self) -> str:
        return self._digest.hexdigest()


@contextmanager
def streamed(package: zipfile.ZipFile, name: str) -> Iterator[Sink]:
    """A Sink for the file `name` in the package (ZIP64 headers: its size is not known yet)."""
    with package.open(name, "w", force_zip64=True) as entry:
        sink = Sink(entry, name)
        yield sink
        sink.flush()


def finish_package(package: zipfile.ZipFile, manifest: dict, bundle: dict | None) -> None:
    """The manifest and, if given, the audit bundle (its events streamed from disk)."""
    package.writestr("manifest.json", orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    if bundle is not None:
        package.write(bundle["events"], "bundle/events.jsonl")
        package.writestr("bundle/checkpoint.txt", bundle["note"])
        package.writestr("bundle/public-key.txt", bundle["vkey"] + "\n")
        package.writestr("bundle/README.txt", BUNDLE_README.format(vkey=bundle["vkey"]))


BUNDLE_README = """This folder is the audit log up to the checkpoint this export was cut at.
Check it without trusting the database that produced it:

    python -m audit.verify bundle --key "{vkey}"

It recomputes every event's hash and chain link and the Merkle root over all events, and
checks the checkpoint's Ed25519 signature against the public key. Get the public key from a
source you trust (GET /api/v1/audit/public-key/ or the auditor page), not from this file.
"""


MANIFEST_NOTES = {
    "checkpoint": "The signed checkpoint (size, Merkle root, signed note) cut just before the "
    "rows were read; null when the server has no signing key configured.",
    "log_size_at_cut": "How many audit events the log held when the export was cut: the "
    "checkpoint's size, or without a checkpoint the highest event seq at that moment.",
    "log_size_at_snapshot": "The highest audit event seq when the rows were read, read in the "
    "same snapshot as the rows. Events after log_size_at_cut up to this one were logged after "
    "the cut: decisions they changed appear in their newer state, which the checkpoint does "
    "not cover yet (a later checkpoint does).",
    "reviews": "CSV exports only: reviews.csv, one row per review of the exported decisions "
    "(known-answer checks left out), with its row count and SHA-256; the reviewer by user name "
    "in auditors' exports, by user id in others'.",
    "rows_from_one_snapshot": "true: every row, review and log size was read in one "
    "PostgreSQL REPEATABLE READ, READ ONLY transaction, a consistent picture of one moment; "
    "false: read without that isolation (SQLite), so rows may reflect changes made while the "
    "export ran.",
}


def manifest(
    export: Any,
    *,
    rows: int,
    data: Path,
    checkpoint: Any,
    log_size_at_cut: int,
    log_size_at_snapshot: int,
    isolated: bool,
    sha256: str | None = None,
) -> dict:
    """`sha256`: the data file's, when it was streamed into the package (not on disk)."""
    return {
        "export": export.pk,
        "format": export.format,
        "filters": export.filters,
        "rows": rows,
        "file": data.name,
        "sha256": sha256 or sha256_of(data),
        "pseudonymised": export.pseudonymise,
        "includes_protected_attributes": export.include_groups,
        "requested_by": export.requested_by.get_username(),
        "requested_at": format_time(export.requested_at),
        "checkpoint": {
            "size": checkpoint.tree_size,
            "root": checkpoint.root,
            "note": checkpoint.note,
        }
        if checkpoint
        else None,
        "log_size_at_cut": log_size_at_cut,
        "log_size_at_snapshot": log_size_at_snapshot,
        "rows_from_one_snapshot": isolated,
        "notes": MANIFEST_NOTES,
    }
