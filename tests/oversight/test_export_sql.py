"""On PostgreSQL the database writes the export (oversight.export_sql): the same bytes (CSV) and
the same table (Parquet) as the Python writers in oversight.exports, which are the reference."""

from __future__ import annotations

import hashlib
import json
import zipfile
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest
from django.db import connection

from appeals.models import Appeal
from models_registry import services as registry
from models_registry.models import MLModel
from oversight import export_sql, exports
from reviews import services as reviews
from reviews.models import Decision, ProtectedAttribute, Review
from reviews.selectors import decisions_answer_visible_to
from tests.fixtures import item, make_user

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

KEY = b"k" * 32
TRICKY_FEATURES = [
    {"income": 1e-05, "debt": 1e16, "years": 12345678901234567890123, "history": 'a,"b"\nc',
     "bankrupt": True},
    {"income": 0.1, "debt": -0.0, "years": 2**63 + 1, "history": "مرحبا 👋🏽 naïve",
     "bankrupt": None},
    {"income": 1.5e20, "debt": 1234567890123456.7, "years": -7, "history": "",
     "bankrupt": False},
    {"income": 5.21924889825151e16, "debt": 0.30000000000000004, "years": 0,
     "history": {"nested": [1, 2.5, "x\ty", None, {"é": 1e-7, "a": True}]}, "bankrupt": [1e300]},
    {"income": 100.0, "debt": 5e-324 * 2, "years": 1, "history": "\r\n", "bankrupt": "\\."},
    {"income": 1e15, "debt": 9.5e15, "years": 10**18, "history": "x" * 500,
     "bankrupt": 'say "hi"'},
]  # fmt: skip
NAMES = [
    ("a, b", "c\"d"), ("\u202eRTL", "plain"), ("x\ny", ""), ("🦜", "é"), ("plain", "q,"),
    ("", "z"),
]  # fmt: skip


@pytest.fixture
def tricky(tiny_model, service, erin, alice):
    """Decisions with floats, texts, times, groups, reviews and appeals that a writer could
    spell differently from Python's csv module and repr."""
    registry.policy_update(
        model=tiny_model,
        changes={"random_audit_rate": 100.0, "blind_review": True},
        actor=erin,
        note="test",
    )
    groups = [{"race": "black", "sex": "female"}, {"race": 'wh"ite, x', "sex": "male\n"}, {}]
    items = [item(n, groups=groups[n % 3]) for n in range(1, 7)]
    made = [r.decision for r in reviews.decisions_ingest(items=items, actor=service.user)]
    # Two reviewers' reviews; times with and without microseconds.
    for reviewer in (alice, make_user("bea", "reviewer")):
        task = reviews.task_claim_next(reviewer=reviewer)
        other = "deny" if task.decision.model_outcome == "approve" else "approve"
        reviews.review_submit(
            task_id=task.pk, reviewer=reviewer, verdict="override", outcome=other,
            reason_code="model_error", rationale="Line one\nline «two», 👍",
        )  # fmt: skip
    Review.objects.update(outcome='maybe, "so"')
    for decision, features, (external_id, outcome) in zip(
        made, TRICKY_FEATURES, NAMES, strict=True
    ):
        Decision.objects.filter(pk=decision.pk).update(
            features=features, external_id=external_id, subject_ref=f"s,{external_id}",
            model_outcome=outcome or "deny", confidence=[1e-05, 0.1, 1.0, 1e16, 1e15, 0.5][
                made.index(decision)],
        )  # fmt: skip
    Review.objects.filter(pk=Review.objects.order_by("id").first().pk).update(
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), seconds_spent=1e-05
    )
    Decision.objects.filter(pk=made[2].pk).update(
        received_at=datetime(2026, 5, 6, 7, 8, 9, 123, tzinfo=UTC),
        finalized_at=datetime(2026, 5, 6, 7, 8, 10, tzinfo=UTC), final_outcome="approve",
        finalized_by="reviewer", policy_version=None,
    )  # fmt: skip
    ProtectedAttribute.objects.create(decision=made[5], name="zeta", value="ž")
    # Decimals no double holds (Python reads ±0.0) and one that is a subnormal double.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE reviews_decision SET features = features"
            " || jsonb_build_object('years', '-1e-400'::jsonb, 'income', '3e-324'::jsonb)"
            " WHERE id = %s",
            [made[4].pk],
        )
    reviewed = Review.objects.order_by("id").first()
    filed = datetime(2026, 2, 3, 4, 5, 6, 7, tzinfo=UTC)
    for decision, status in ((made[0], "overturned"), (made[1], "submitted")):
        Appeal.objects.create(
            decision=decision, status=status, grounds="g", filed_via="api", filed_at=filed,
            due_at=filed + timedelta(days=30), task=reviewed.task, outcome_before="deny",
            decided_at=filed + timedelta(days=1) if status == "overturned" else None,
        )  # fmt: skip
        reviewed = Review.objects.order_by("id").last()
    return made


def _viewers(dave, service):
    quinn = make_user("quinn", "auditor", "reviewer")  # blind to what awaits a blind review
    return {
        "auditor": (decisions_answer_visible_to(dave), True),
        "blind": (decisions_answer_visible_to(quinn), True),
        "service": (decisions_answer_visible_to(service.user), False),
    }


def _python(path, fmt, qs, groups, alias):
    rows = exports.iter_rows(qs, include_groups=groups, pseudonymise=False, alias=alias)
    names = exports.csv_columns(qs, groups) if fmt == "csv" else exports.columns(groups)
    return exports.WRITERS[fmt](path, rows, names, lambda n: None)


def _sql(path, fmt, qs, groups, alias, pseudonymise):
    names = exports.csv_columns(qs, groups) if fmt == "csv" else exports.columns(groups)
    return export_sql.WRITERS[fmt](
        path, qs, names, lambda n: None, alias=alias if pseudonymise else None
    )


@pytest.mark.parametrize("pseudonymise", [False, True])
@pytest.mark.parametrize("viewer", ["auditor", "blind", "service"])
def test_the_database_writes_the_same_csv_bytes_as_python(
    tricky, dave, service, tmp_path, viewer, pseudonymise
):
    qs, groups = _viewers(dave, service)[viewer]
    qs = exports.decisions(qs, {})
    alias = exports.pseudonymiser(pseudonymise, key=KEY)
    rows = _python(tmp_path / "python.csv", "csv", qs, groups, alias)
    assert rows == _sql(tmp_path / "sql.csv", "csv", qs, groups, alias, pseudonymise)
    python, sql = (tmp_path / "python.csv").read_bytes(), (tmp_path / "sql.csv").read_bytes()
    assert sql == python
    if viewer == "auditor":
        assert rows == 6
        text = python.decode()
        # jsonb keeps numbers as decimals: 1.5e20 in a feature comes back an integer.
        for spelled in ("1e-05", "1e+16", "1000000000000000.0", "1234567890123456.8", "1e-07",
                        "150000000000000000000", "👋🏽", "\u202eRTL",
                        "2026-05-06T07:08:09.000123Z", '"wh""ite, x"', "True"):  # fmt: skip
            assert spelled in text
        assert ("p-" in text) == pseudonymise


@pytest.mark.parametrize("by_name", [False, True])
@pytest.mark.parametrize("viewer", ["auditor", "blind", "service"])
def test_the_database_writes_the_same_reviews_csv_as_python(
    tricky, dave, service, tmp_path, viewer, by_name
):
    qs = exports.decisions(_viewers(dave, service)[viewer][0], {})
    rows = exports.write_reviews_csv(tmp_path / "python.csv", qs, by_name=by_name)
    assert rows == export_sql.write_reviews_csv(tmp_path / "sql.csv", qs, by_name=by_name)
    assert (tmp_path / "sql.csv").read_bytes() == (tmp_path / "python.csv").read_bytes()
    if viewer == "auditor":
        assert rows == 2 and "1e-05" in (tmp_path / "sql.csv").read_text()


def test_a_blind_viewer_gets_fewer_rows_than_an_auditor(tricky, dave, service, tmp_path):
    viewers = _viewers(dave, service)
    counts = {}
    for name in ("auditor", "blind", "service"):
        qs, groups = viewers[name]
        counts[name] = _sql(tmp_path / f"{name}.csv", "csv", exports.decisions(qs, {}), groups,
                            None, False)  # fmt: skip
    assert counts["auditor"] == 6 and counts["blind"] < counts["auditor"]
    assert b"group." not in (tmp_path / "service.csv").read_bytes().split(b"\r\n")[0]


@pytest.mark.parametrize("pseudonymise", [False, True])
@pytest.mark.parametrize("viewer", ["auditor", "blind", "service"])
def test_the_database_makes_the_same_parquet_table_as_python(
    tricky, dave, service, tmp_path, viewer, pseudonymise
):
    qs, groups = _viewers(dave, service)[viewer]
    qs = exports.decisions(qs, {})
    alias = exports.pseudonymiser(pseudonymise, key=KEY)
    rows = _python(tmp_path / "python.parquet", "parquet", qs, groups, alias)
    assert rows == _sql(tmp_path / "sql.parquet", "parquet", qs, groups, alias, pseudonymise)
    python = pq.read_table(tmp_path / "python.parquet")
    sql = pq.read_table(tmp_path / "sql.parquet")
    assert sql.schema.equals(python.schema)
    assert sql.equals(python), _first_difference(sql, python)


def test_filters_apply_to_the_database_path(tricky, dave, tmp_path):
    qs = exports.decisions(decisions_answer_visible_to(dave), {"groups": {"race": "black"}})
    alias = exports.pseudonymiser(False)
    rows = _python(tmp_path / "python.csv", "csv", qs, True, alias)
    assert 0 < rows == _sql(tmp_path / "sql.csv", "csv", qs, True, alias, False) < 6
    assert (tmp_path / "sql.csv").read_bytes() == (tmp_path / "python.csv").read_bytes()


def test_the_key_never_reaches_the_database(tricky, dave, tmp_path, monkeypatch):
    """The pseudonyms are made in Python: the statement sent carries neither key nor pseudonym."""
    qs = exports.decisions(decisions_answer_visible_to(dave), {})
    sent, copy = [], export_sql._copy
    alias = exports.pseudonymiser(True, key=KEY)

    def spy(query, params, **options):
        sent.append(f"{query} {params}")
        return copy(query, params, **options)

    monkeypatch.setattr(export_sql, "_copy", spy)
    _sql(tmp_path / "sql.csv", "csv", qs, True, alias, True)
    data = (tmp_path / "sql.csv").read_text()
    pseudonyms = {alias(d.subject_ref) for d in qs}
    assert sent and pseudonyms and all(p in data for p in pseudonyms)
    assert not any(KEY.decode() in s or "p-" in s for s in sent)


def _first_difference(a, b) -> str:
    for name in a.column_names:
        if not a.column(name).equals(b.column(name)):
            return f"{name}: {a.column(name).to_pylist()} != {b.column(name).to_pylist()}"
    return "schemas or chunking"


@pytest.mark.parametrize("pseudonymise", [False, True])
def test_lines_with_more_cells_than_a_function_takes_arguments(
    tricky, dave, tmp_path, pseudonymise
):
    """concat_ws takes at most 100 arguments: a model of 120 features more makes lines of
    ~150 cells, which the database joins in groups, into the same bytes."""
    model = MLModel.objects.get(pk=tricky[0].model_id)
    extra = {f"f{i:03}": [i * 0.5, None, "a,b", True, 1e-05][i % 5] for i in range(120)}
    MLModel.objects.filter(pk=model.pk).update(
        features=model.features + [{"name": name, "type": "number"} for name in extra]
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE reviews_decision SET features = features || %s::jsonb WHERE id = ANY(%s)",
            [json.dumps(extra), [d.pk for d in tricky]],
        )
    qs = exports.decisions(decisions_answer_visible_to(dave), {})
    alias = exports.pseudonymiser(pseudonymise, key=KEY)
    assert len(exports.csv_columns(qs, True)) > 100
    rows = _python(tmp_path / "python.csv", "csv", qs, True, alias)
    assert rows == _sql(tmp_path / "sql.csv", "csv", qs, True, alias, pseudonymise) == 6
    assert (tmp_path / "sql.csv").read_bytes() == (tmp_path / "python.csv").read_bytes()


TINY = [
    "2.4703282292062327e-324",  # just under 2^-1075: rounds to zero
    "2.4703282292062328e-324",  # just over: the smallest subnormal
    "-2.4703282292062328e-324",
    "-1e-400",
    "3e-324",
    "1e-310",
    "2.2250738585072014e-308",
]


def _tiny_floats(numbers: list[str]) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT oversight_tiny_float(x::numeric) FROM unnest(%s::text[]) AS x", [numbers]
        )
        return [row[0] for row in cursor.fetchall()]


def test_decimals_near_zero_print_as_python_reads_them():
    """At 2^-1075 a decimal stops rounding to zero: on either side of it, as Python reads it."""
    assert _tiny_floats(TINY) == [repr(float(x)) for x in TINY]


def test_decimals_near_zero_in_a_parallel_plan():
    """The export's functions are PARALLEL SAFE: they run in parallel workers (a PL/pgSQL
    EXCEPTION block there failed: "cannot start subtransactions during a parallel operation")."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        forcing = "debug_parallel_query" if int(cursor.fetchone()[0]) >= 160000 else None
        cursor.execute("SET LOCAL %s = on" % (forcing or "force_parallel_mode"))
        cursor.execute("SET LOCAL parallel_setup_cost = 0")
        cursor.execute("SET LOCAL parallel_tuple_cost = 0")
        assert _tiny_floats(TINY * 100) == [repr(float(x)) for x in TINY] * 100


@pytest.mark.parametrize("flush", [100, 1 << 20])
def test_a_csv_streamed_into_the_package_is_the_same_bytes(
    tricky, dave, tmp_path, monkeypatch, flush
):
    """The export job streams the database's CSV straight into the zip (compressed while the
    database writes the next rows): the same bytes as the file, and the SHA-256 of them."""
    monkeypatch.setattr(exports.Sink, "FLUSH", flush)
    qs = exports.decisions(decisions_answer_visible_to(dave), {})
    names = exports.csv_columns(qs, True)
    on_disk = tmp_path / "decisions.csv"
    rows = export_sql.write_csv(on_disk, qs, names, lambda count: None)
    with exports.open_package(tmp_path / "p.zip") as package:
        with exports.streamed(package, "decisions.csv") as sink:
            assert export_sql.write_csv(sink, qs, names, lambda count: None) == rows == 6
        with exports.streamed(package, "reviews.csv") as reviews:
            export_sql.write_reviews_csv(reviews, qs, by_name=True)
    export_sql.write_reviews_csv(tmp_path / "reviews.csv", qs, by_name=True)
    with zipfile.ZipFile(tmp_path / "p.zip") as package:
        data, reviewed = package.read("decisions.csv"), package.read("reviews.csv")
    assert data == on_disk.read_bytes()
    assert sink.sha256() == hashlib.sha256(data).hexdigest()
    assert reviewed == (tmp_path / "reviews.csv").read_bytes()
    assert reviews.sha256() == hashlib.sha256(reviewed).hexdigest()
