"""An auditor verifies the chain and exports the log in a real browser."""

from __future__ import annotations

import pytest

from audit.models import ChainVerification
from audit.services import checkpoint_sign
from oversight.models import Export
from reviews.services import decisions_ingest
from tests.e2e.conftest import log_in
from tests.fixtures import PASSWORD, item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_auditor_verifies_the_chain_and_exports_a_filtered_log(
    page, live_server, tiny_model, service, dave, artifacts
):
    decisions_ingest(items=[item(n) for n in range(1, 6)], actor=service.user)
    checkpoint_sign()
    log_in(page, live_server, "dave", PASSWORD)
    page.goto(f"{live_server.url}/audit/")
    assert "oversight.local/audit" in page.locator("#vkey").inner_text()
    page.click("#verify-now")
    page.wait_for_selector("text=Verification requested")
    assert ChainVerification.objects.get().ok is True  # tasks run in-process here
    page.goto(f"{live_server.url}/audit/")
    assert "intact" in page.locator("#last-verified").inner_text()
    page.screenshot(path=str(artifacts / "audit-home.png"), full_page=True)

    page.goto(f"{live_server.url}/audit/exports/")
    page.select_option("#id_format", "parquet")
    page.fill("#id_groups", "race=white")
    page.check("#id_include_bundle")
    page.click("#export-form button[type=submit]")
    page.wait_for_selector("text=is ready")
    export = Export.objects.get()
    assert (
        export.status == "done"
        and export.rows == 5
        and export.filters == {"groups": {"race": "white"}}
    )
    with page.expect_download() as download:
        page.click(f"a[href='/audit/exports/{export.pk}/download/']")
    assert download.value.suggested_filename == f"oversight-export-{export.pk}.zip"

    # The bundle is the raw log: it cannot go with pseudonymised rows, and the form says why.
    page.goto(f"{live_server.url}/audit/exports/")
    page.check("#id_pseudonymise")
    page.check("#id_include_bundle")
    page.click("#export-form button[type=submit]")
    page.wait_for_selector("text=it cannot be pseudonymised")
    assert Export.objects.count() == 1
