"""The report pages under /oversight/: who sees what, the charts' text alternatives, the tables
and downloads, the buttons."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.test import Client

from core import roles as r
from models_registry import services as registry
from oversight import monitoring
from oversight.models import BreakerTrip
from tests.fixtures import make_user, register_tiny
from tests.oversight.reportdata import Row, store

pytestmark = pytest.mark.django_db
PAGE = "/oversight/models/tiny/"


def _rows(race: str, reviewed: int, overridden: int) -> list[Row]:
    return [Row({"race": race, "sex": "f"}, "approve", "deny", "reviewer")] * overridden + [
        Row({"race": race, "sex": "m"}, "approve", "approve", "reviewer")
    ] * (reviewed - overridden)


@pytest.fixture
def model(erin):
    model = register_tiny(erin, [])
    store(model, _rows("a", 40, 8) + _rows("b", 25, 10) + _rows("c", 30, 3) + _rows("d", 4, 2))
    return model


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_auditor_sees_charts_with_text_alternatives_and_the_tables_behind_them(model, dave):
    response = client_for(dave).get(PAGE, {"attribute": ["race", "sex"], "intersect": "true"})
    assert response.status_code == 200
    page = response.content.decode()
    for chart in ("override-chart-0", "selection-chart-0", "trend-chart-0", "appeals-chart-0"):
        assert f'id="{chart}"' in page and f'aria-labelledby="{chart}-title {chart}-desc"' in page
        assert f'<title id="{chart}-title">' in page and f'<desc id="{chart}-desc">' in page
    assert "Override rates by race (the table behind the chart)" in page
    assert "Override rates by race × sex" in page
    assert "is the unbiased estimate" in page
    assert "suppressed: fewer than 10 reviewed decisions" in page
    assert "<script" not in page.split("<main", 1)[1]  # no JavaScript needed
    assert "Demo reviews are simulated" not in page  # real reviews here


def test_the_chart_descriptions_carry_the_numbers(model, dave):
    page = client_for(dave).get(PAGE, {"attribute": "race"}).content.decode()
    desc = page.split('<desc id="override-chart-0-desc">', 1)[1].split("</desc>", 1)[0]
    assert "a 20.0%" in desc and "b 40.0%" in desc and "reference group (a)" in desc


@pytest.mark.parametrize("who", ["carol", "erin"])
def test_seniors_and_owners_see_no_counts_of_small_groups(model, who, erin):
    user = erin if who == "erin" else make_user("carol", r.SENIOR_REVIEWER)
    page = client_for(user).get(PAGE, {"attribute": "race"}).content.decode()
    table = page.split("Override rates by race (the table behind the chart)", 1)[1].split(
        "</table>", 1
    )[0]
    row_d = table.split('<th scope="row">d', 1)[1].split("</tr>", 1)[0]
    assert '<td class="num">13</td>' not in row_d and "—" in row_d
    assert "cannot be worked out" in page or "worked out from" in page


def test_others_are_kept_out(model, alice, frank):
    assert client_for(alice).get(PAGE).status_code == 403
    assert client_for(frank).get("/oversight/").status_code == 403
    stranger = make_user("olga", r.MODEL_OWNER)
    assert client_for(stranger).get(PAGE).status_code == 404
    assert client_for(stranger).get("/oversight/").status_code == 200
    assert Client().get(PAGE).status_code == 302  # to the login page


def test_the_index_lists_the_models_one_may_report_on(model, erin, dave):
    register_tiny(make_user("olga", r.MODEL_OWNER), [], name="other")
    assert "other" in client_for(dave).get("/oversight/").content.decode()
    page = client_for(erin).get("/oversight/").content.decode()
    assert "tiny" in page and "/oversight/models/other/" not in page


def test_bad_filters_are_shown_on_the_page(model, dave):
    response = client_for(dave).get(PAGE, {"attribute": "income", "sample": "x"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "attribute:" in page and "sample:" in page


def test_the_model_menu_goes_to_the_other_models_report(model, dave):
    other = register_tiny(make_user("olga", r.MODEL_OWNER), [], name="other")
    response = client_for(dave).get(PAGE, {"model": other.name, "attribute": "race", "version": 1})
    assert response.status_code == 302
    assert response["Location"] == "/oversight/models/other/?attribute=race"


@pytest.mark.parametrize("table", ["overrides", "selection", "trend", "appeals", "drift"])
def test_every_table_downloads_as_csv_and_json(model, dave, table, erin, tiny_artifact):
    version = registry.version_upload(model=model, artifact=tiny_artifact, actor=erin)
    registry.version_promote(version=version, actor=erin)  # a champion to watch for drift
    url = f"{PAGE}{table}.csv"
    response = client_for(dave).get(url, {"attribute": "race"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert f'filename="tiny-{table}.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert rows
    body = json.loads(client_for(dave).get(f"{PAGE}{table}.json", {"attribute": "race"}).content)
    assert body["model"] == "tiny" and body["table"] == table and body["rows"]


def test_downloads_hide_small_groups_from_seniors_too(model):
    senior = make_user("carol", r.SENIOR_REVIEWER)
    body = client_for(senior).get(f"{PAGE}overrides.json", {"attribute": "race"}).json()
    d = next(row for row in body["rows"] if row["group"] == "d")
    assert d["suppressed"] and d["reviewed"] is None and d["decisions"] is None
    rows = list(
        csv.DictReader(io.StringIO(client_for(senior).get(f"{PAGE}overrides.csv").content.decode()))
    )
    d = next(row for row in rows if row["group"] == "d" and row["attribute"] == "race")
    assert d["reviewed"] == "" and d["decisions"] == ""
    assert client_for(senior).get(f"{PAGE}secrets.csv").status_code == 404


def test_the_evaluate_button_raises_alerts(model, dave):
    response = client_for(dave).post(f"{PAGE}evaluate/", follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "override_gap" in page
    assert client_for(dave).get(f"{PAGE}evaluate/").status_code == 405


def test_owners_see_the_kind_of_an_alert_but_not_its_message(model, dave, erin):
    monitoring.model_evaluate(model=model)
    owner_page = client_for(erin).get(PAGE).content.decode()
    auditor_page = client_for(dave).get(PAGE).content.decode()
    assert "override_gap" in owner_page and "Override rates differ" not in owner_page
    assert "Override rates differ" in auditor_page


def test_an_owner_resets_a_tripped_breaker_from_the_page(model, erin, dave):
    finding = monitoring.Finding("drift", "income PSI 0.9", {"feature": "income"}, trips=True)
    monitoring.breaker_trip(model=model, finding=finding)
    page = client_for(erin).get(PAGE).content.decode()
    assert "tripped" in page and 'id="breaker-reset"' in page
    assert 'id="breaker-reset"' not in client_for(dave).get(PAGE).content.decode()
    refused = client_for(erin).post(f"{PAGE}breaker/reset/", {"note": ""}, follow=True)
    assert "say why" in refused.content.decode()
    assert BreakerTrip.objects.get().reset_at is None
    client_for(erin).post(f"{PAGE}breaker/reset/", {"note": "Explained: a data fix."})
    assert BreakerTrip.objects.get().reset_note == "Explained: a data fix."


def test_drift_is_shown_when_asked(model, dave, erin, tiny_artifact):
    version = registry.version_upload(model=model, artifact=tiny_artifact, actor=erin)
    registry.version_promote(version=version, actor=erin)
    page = client_for(dave).get(PAGE).content.decode()
    assert 'id="show-drift"' in page and "Version 1" not in page
    page = client_for(dave).get(PAGE, {"drift": "true"}).content.decode()
    assert "Version 1 (champion)" in page and "No baseline" in page
