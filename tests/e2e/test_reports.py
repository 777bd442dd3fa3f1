"""The group report in a real browser: charts drawn, filters and buttons working without
JavaScript of ours, and no serious or critical accessibility violation (axe-core)."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe

from oversight import monitoring
from oversight.models import BreakerTrip
from tests.e2e.conftest import log_in
from tests.fixtures import PASSWORD, register_tiny
from tests.oversight.reportdata import random_rows, store

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _serious(page) -> list[str]:
    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_an_auditor_reads_the_report_with_no_serious_accessibility_violation(
    page, live_server, erin, dave, artifacts
):
    model = register_tiny(erin, [])
    store(model, random_rows(700, seed=3))
    log_in(page, live_server, "dave", PASSWORD)
    page.goto(f"{live_server.url}/oversight/")
    page.click("text=tiny")
    page.check("#f-intersect")
    page.select_option("#f-sample", "all")
    page.click("#report-filters button[type=submit]")
    page.wait_for_selector("#override-chart-2")  # race, sex and race × sex
    assert "intersect=true" in page.url
    assert page.locator("svg.chart").count() >= 9
    assert page.locator("#random-audit-note").inner_text().count("unbiased") == 1
    page.screenshot(path=str(artifacts / "report.png"), full_page=True)
    assert _serious(page) == []

    page.click("#evaluate-now")
    page.wait_for_selector("text=Findings:")
    assert page.locator("#alerts-panel .badge.bad").count() >= 1
    assert _serious(page) == []

    with page.expect_download() as download:
        page.click("#overrides-0 .downloads a:text('CSV')")
    assert download.value.suggested_filename == "tiny-overrides.csv"


def test_an_owner_resets_the_tripped_breaker_in_the_browser(page, live_server, erin, artifacts):
    model = register_tiny(erin, [])
    store(model, random_rows(200, seed=4))
    finding = monitoring.Finding("drift", "Version 1 drifted (PSI income 0.61).", {}, trips=True)
    monitoring.breaker_trip(model=model, finding=finding)
    log_in(page, live_server, "erin", PASSWORD)
    page.goto(f"{live_server.url}/oversight/models/tiny/")
    assert "tripped" in page.locator("#breaker-panel").inner_text()
    assert _serious(page) == []
    page.fill("#reset-note", "Income field fixed upstream; checked 50 decisions by hand.")
    page.click("#breaker-reset button[type=submit]")
    page.wait_for_selector("text=Breaker reset")
    assert BreakerTrip.objects.get().reset_by == erin
    page.screenshot(path=str(artifacts / "report-breaker.png"), full_page=True)
