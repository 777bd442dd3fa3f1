"""GET /api/v1/reports/overrides/ and /api/v1/reports/drift/: who may read what, and bad input."""

from __future__ import annotations

import pytest

from core import roles as r
from tests.fixtures import api, make_user, register_tiny
from tests.oversight.reportdata import Row, store

pytestmark = pytest.mark.django_db
URL = "/api/v1/reports/overrides/"


def _rows(race: str, reviewed: int, overridden: int) -> list[Row]:
    return [Row({"race": race, "sex": "f"}, "approve", "deny", "reviewer")] * overridden + [
        Row({"race": race, "sex": "m"}, "approve", "approve", "reviewer")
    ] * (reviewed - overridden)


@pytest.fixture
def model(erin):
    model = register_tiny(erin, [])
    store(model, _rows("a", 40, 8) + _rows("b", 25, 10) + _rows("c", 30, 3) + _rows("d", 4, 2))
    return model


def test_an_auditor_reads_every_count(model, dave):
    response = api(dave).get(URL, {"model": "tiny", "attribute": "race"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["small_group_counts_shown"] is True
    d = next(g for g in body["tables"][0]["groups"] if g["group"] == "d")
    assert d["suppressed"] and d["reviewed"] == 4 and d["override_rate"] is None
    assert body["tables"][0]["test"]["p_holm"] is not None
    assert body["appeals"]["available"] is True and "withdrawn" in body["appeals"]["note"]
    assert body["tables"][0]["groups"][0]["appeal_rate"] == 0.0  # no appeals filed


@pytest.mark.parametrize("role", [r.SENIOR_REVIEWER, r.MODEL_OWNER])
def test_seniors_and_owners_get_no_count_of_small_groups(model, role, erin):
    viewer = erin if role == r.MODEL_OWNER else make_user("sen", role)
    body = api(viewer).get(URL, {"model": "tiny", "attribute": "race"}).json()
    assert body["small_group_counts_shown"] is False
    hidden = [g for g in body["tables"][0]["groups"] if g["suppressed"]]
    assert {g["group"] for g in hidden} == {"b", "d"}
    assert all(g["reviewed"] is None and g["decisions"] is None for g in hidden)


def test_an_owner_reports_only_on_their_own_models(model, erin):
    other_owner = make_user("olga", r.MODEL_OWNER)
    response = api(other_owner).get(URL, {"model": "tiny"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert api(erin).get(URL, {"model": "tiny"}).status_code == 200


@pytest.mark.parametrize("who", ["alice", "frank", "service"])
def test_reviewers_services_and_people_without_a_role_are_refused(
    model, who, alice, frank, service
):
    user = {"alice": alice, "frank": frank, "service": service.user}[who]
    response = api(user).get(URL, {"model": "tiny"})
    assert response.status_code == 403
    assert api().get(URL, {"model": "tiny"}).status_code in (401, 403)


def test_a_missing_model_is_a_400_naming_it(dave):
    response = api(dave).get(URL)
    assert response.status_code == 400 and "model" in response.json()["error"]["fields"]


def test_every_bad_filter_is_named_at_once(model, dave):
    response = api(dave).get(
        URL,
        {
            "model": "tiny",
            "attribute": ["race", "income"],
            "intersect": "maybe",
            "since": "2026-13-01",
            "until": "yesterday",
            "version": "x",
            "sample": "some",
            "reason": "because",
        },
    )
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert set(fields) == {
        "attribute", "intersect", "since", "until", "version", "sample", "reason",
    }  # fmt: skip
    assert "income" in fields["attribute"][0]


def test_an_intersection_needs_two_attributes_and_a_version_must_exist(model, dave):
    response = api(dave).get(URL, {"model": "tiny", "attribute": "race", "intersect": "true"})
    assert response.json()["error"]["fields"]["intersect"] == ["needs at least two attributes"]
    response = api(dave).get(URL, {"model": "tiny", "version": "7"})
    assert response.json()["error"]["fields"]["version"] == ["tiny has no version 7"]
    response = api(dave).get(URL, {"model": "tiny", "since": "2026-11-02", "until": "2026-11-01"})
    assert "until" in response.json()["error"]["fields"]


def test_an_intersection_and_a_named_reference(model, dave):
    response = api(dave).get(
        URL,
        {"model": "tiny", "attribute": ["race", "sex"], "intersect": "true", "reference": "c"},
    )
    body = response.json()
    assert [t["attribute"] for t in body["tables"]] == ["race", "sex", "race × sex"]
    assert body["tables"][0]["reference"] == "c"
    assert body["tables"][2]["groups"][0]["group"] == "a/f"
    assert body["filters"]["intersect"] is True and body["filters"]["reference"] == ["c"]
    assert len(body["trend"]) == 2


def test_the_drift_report_says_no_baseline_for_a_version_without_one(tiny_model, dave):
    response = api(dave).get("/api/v1/reports/drift/", {"model": "tiny"})
    assert response.status_code == 200
    (version,) = response.json()["versions"]
    assert version["status"] == "no_baseline" and version["features"] == []
    response = api(dave).get("/api/v1/reports/drift/", {"model": "tiny", "version": 9})
    assert response.status_code == 400 and "version" in response.json()["error"]["fields"]
    assert api(make_user("rev", r.REVIEWER)).get("/api/v1/reports/drift/").status_code == 403


def test_the_selection_report_matches_the_override_reports_selection_part(model, dave):
    params = {"model": "tiny", "attribute": ["race", "sex"]}
    full = api(dave).get(URL, params).json()
    light = api(dave).get("/api/v1/reports/selection/", params).json()
    for table, part in zip(full["tables"], light["tables"], strict=True):
        assert part["selection"] == table["selection"]
        for group, row in zip(table["groups"], part["groups"], strict=True):
            assert row["group"] == group["group"] and row["suppressed"] == group["suppressed"]
            assert row["selection_rate_final"] == group["selection_rate_final"]
            assert row["final"] == group["final"]
    senior = make_user("sen", r.SENIOR_REVIEWER)
    hidden = api(senior).get("/api/v1/reports/selection/", params).json()["tables"][0]["groups"]
    assert {g["group"] for g in hidden if g["suppressed"]} == {"b", "d"}
    assert all(g["final"] is None for g in hidden if g["suppressed"])


def test_appeal_and_overturn_rates_count_each_groups_appeals(model, dave, erin):
    """Group a: 40 decisions, 3 appeals (one overturned, one upheld, one open); group c: 30
    decisions, one withdrawn appeal. Counted in the report's own GROUP BY."""
    from django.utils import timezone

    from appeals.models import Appeal
    from reviews.models import Decision, ReviewTask

    def appeal(decision: Decision, status: str) -> None:
        now = timezone.now()
        task = ReviewTask.objects.create(
            decision=decision, model_id=decision.model_id, kind="appeal", due_at=now,
            created_at=now, senior_only=True, state="open",
        )  # fmt: skip
        Appeal.objects.create(
            decision=decision, status=status, grounds="g" * 30, filed_via="service", filed_at=now,
            due_at=now, task=task, outcome_before=decision.final_outcome,
            decided_at=now if status in ("upheld", "overturned") else None,
        )  # fmt: skip

    a = list(Decision.objects.filter(protected__name="race", protected__value="a")[:3])
    for decision, status in zip(a, ["overturned", "upheld", "submitted"], strict=True):
        appeal(decision, status)
    appeal(
        Decision.objects.filter(protected__name="race", protected__value="c").first(), "withdrawn"
    )
    body = api(dave).get(URL, {"model": "tiny", "attribute": "race"}).json()
    groups = {g["group"]: g for g in body["tables"][0]["groups"]}
    assert (groups["a"]["appeals"], groups["a"]["appeals_decided"], groups["a"]["overturned"]) == (
        3, 2, 1
    )  # fmt: skip
    assert groups["a"]["appeal_rate"] == 3 / 40 and groups["a"]["overturn_rate"] == 1 / 2
    assert groups["c"]["appeals"] == 1 and groups["c"]["overturn_rate"] is None
