"""Bulk ingests that race for the same external ids.

Batches of 32 or more rows go into PostgreSQL with COPY (core.bulk), past Django's cursor
wrapper; a duplicate key from COPY must still reach ingest's retry as an IntegrityError."""

from __future__ import annotations

from contextlib import contextmanager
from types import SimpleNamespace

import psycopg
import pytest
from django.db import IntegrityError, connection
from django.db.backends.postgresql.base import DatabaseWrapper

from audit.verification import verify_log
from core import bulk
from reviews.models import Decision, ProtectedAttribute
from tests.fixtures import item
from tests.threads import post_at_once

BULK = "/api/v1/decisions/bulk/"
ROUNDS = 3


class _DuplicateOnCopy:
    """psycopg's COPY context: the server reports a duplicate key when the copy ends."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if exc_info[0] is None:
            raise psycopg.errors.UniqueViolation("duplicate key value violates unique constraint")

    def write_row(self, row) -> None:
        pass


@pytest.fixture
def postgres_copy_that_fails(monkeypatch):
    """A PostgreSQL connection (never opened) whose COPY hits a unique violation."""
    pg = DatabaseWrapper({**connection.settings_dict, "OPTIONS": {}}, alias="fake-postgres")

    @contextmanager
    def cursor():
        yield SimpleNamespace(cursor=SimpleNamespace(copy=lambda sql: _DuplicateOnCopy()))

    monkeypatch.setattr(pg, "cursor", cursor)
    monkeypatch.setattr(bulk, "connections", {"default": pg})
    return pg


def test_it_reports_a_duplicate_key_from_copy_as_an_integrity_error(postgres_copy_that_fails):
    rows = [ProtectedAttribute(pk=n, decision_id=n, name="race", value="x") for n in range(40)]
    with pytest.raises(IntegrityError) as caught:
        bulk.insert(rows)
    assert isinstance(caught.value.__cause__, psycopg.errors.UniqueViolation)
    with pytest.raises(IntegrityError):
        bulk.insert_tuples(ProtectedAttribute, ["decision_id", "name", "value"], [(1, "a", "b")])


def _items(numbers: range, **overrides) -> dict:
    return {"items": [item(n, **overrides) for n in numbers]}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_resolves_overlapping_bulks_to_one_decision_per_external_id(tiny_model, service):
    for round_ in range(ROUNDS):
        first = 1000 * round_
        a, b = range(first, first + 48), range(first + 24, first + 72)
        responses = post_at_once(service.client, BULK, [_items(a), _items(b)])
        assert [r.status_code for r in responses if r.status_code not in (200, 201)] == []
        ids = [{row["index"]: row["id"] for row in r.json()["items"]} for r in responses]
        shared = [n - first for n in a if n in b]
        assert all(ids[0][n] == ids[1][n - 24] for n in shared)  # the same decision for both
    assert Decision.objects.count() == ROUNDS * 72
    assert verify_log().ok


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_refuses_the_loser_of_overlapping_bulks_with_different_bodies(tiny_model, service):
    for round_ in range(ROUNDS):
        first = 1000 * round_
        a = _items(range(first, first + 48))
        b = _items(range(first + 24, first + 72), subject_ref="someone-else")
        responses = post_at_once(service.client, BULK, [a, b])
        assert sorted(r.status_code for r in responses) == [201, 409]
    assert Decision.objects.count() == ROUNDS * 48
    assert verify_log().ok
