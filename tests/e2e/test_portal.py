"""The affected person's portal in a real browser: usable at 375 px and on a desktop, by
keyboard alone and without JavaScript, printable, and with no serious or critical axe-core
violation on any of its pages."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe

from appeals import services
from appeals.models import Appeal
from audit import keys
from audit.services import checkpoint_sign
from audit.verify import verify_path
from tests.appeals.conftest import DENY, GROUNDS, claim_appeal, ingest
from tests.fixtures import make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 375, "height": 740}
DESKTOP = {"width": 1280, "height": 900}
SIZES = [pytest.param(PHONE, id="phone"), pytest.param(DESKTOP, id="desktop")]
AXE = Axe()


def assert_accessible(page, name: str, artifacts) -> None:
    """No serious or critical axe-core violation, and nothing wider than the screen."""
    results = AXE.run(page)
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == [], f"{name}: {bad}"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{name}: {width}px wide"
    shot = artifacts / f"portal-{name}-{page.viewport_size['width']}.png"
    page.screenshot(path=str(shot), full_page=True)


@pytest.fixture
def issued(tiny_model, service):
    decision = ingest(service, 1, **DENY)
    checkpoint_sign()
    return services.access_code_issue(decision=decision, actor=service.user)


def sign_in(page, live_server, issued) -> None:
    page.goto(f"{live_server.url}/my-decision/")
    page.fill("#id_reference", issued.reference)
    page.fill("#id_access_code", issued.access_code)
    page.click("button[type=submit]")
    page.wait_for_selector("#notice")


@pytest.mark.parametrize("viewport", SIZES)
def test_every_portal_page_passes_axe(browser, live_server, issued, artifacts, viewport):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(f"{live_server.url}/my-decision/")
        assert_accessible(page, "sign-in", artifacts)
        page.fill("#id_reference", issued.reference)
        page.fill("#id_access_code", "WRONG-CODE-0000")
        page.click("button[type=submit]")
        page.wait_for_selector("#sign-in-error")
        assert_accessible(page, "sign-in-refused", artifacts)

        sign_in(page, live_server, issued)
        assert_accessible(page, "notice", artifacts)
        page.click("#appeal-link")
        page.wait_for_selector("#appeal-form")
        assert_accessible(page, "appeal-form", artifacts)
        page.fill("#id_grounds", "Too short")
        page.fill("#id_correct_income", "lots")
        page.click("#send-appeal")
        page.wait_for_selector("#form-errors")
        assert_accessible(page, "appeal-errors", artifacts)

        big = {"name": "big.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-" + b"0" * 6**9}
        page.set_input_files("#id_attachment", big)
        page.fill("#id_grounds", GROUNDS)
        page.fill("#id_correct_income", "")
        page.click("#send-appeal")
        page.wait_for_selector("text=The document is too large")
        assert_accessible(page, "too-large", artifacts)

        page.goto(f"{live_server.url}/my-decision/appeal/")
        page.fill("#id_grounds", GROUNDS)
        page.fill("#id_correct_income", "72")
        page.click("#send-appeal")
        page.wait_for_selector("#appeal-status")
        assert_accessible(page, "appeal-filed", artifacts)

        appeal = Appeal.objects.get()
        carol = make_user(f"carol{viewport['width']}", "senior_reviewer")
        claim_appeal(carol)
        services.appeal_resolve(
            appeal_id=appeal.pk,
            senior=carol,
            result="overturned",
            outcome="approve",
            reasons="Your income was higher.",
        )
        page.reload()
        page.wait_for_selector("#appeal-reasons")
        assert_accessible(page, "appeal-decided", artifacts)

        page.click("#sign-out")
        page.wait_for_selector("#sign-in-form")
        assert_accessible(page, "signed-out", artifacts)
    finally:
        context.close()


def tab_to(page, element_id: str, limit: int = 60) -> int:
    """Press Tab until the element has the focus; how many presses it took."""
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == element_id:
            return presses
    raise AssertionError(f"#{element_id} is not reached by Tab")


@pytest.mark.parametrize("viewport", SIZES)
def test_the_person_appeals_by_keyboard_without_javascript(
    browser, live_server, issued, artifacts, viewport
):
    context = browser.new_context(viewport=viewport, java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(f"{live_server.url}/my-decision/")
        assert tab_to(page, "id_reference") == 3  # the skip link, the portal's name, the field
        page.keyboard.type(issued.reference)
        page.keyboard.press("Tab")
        page.keyboard.type(issued.access_code)
        page.keyboard.press("Enter")
        page.wait_for_selector("#notice")
        assert "deny" in page.inner_text("#outcome").lower()

        tab_to(page, "appeal-link")
        page.keyboard.press("Enter")
        page.wait_for_selector("#appeal-form")
        tab_to(page, "id_grounds")
        page.keyboard.type(GROUNDS)
        tab_to(page, "send-appeal")  # on through the corrections, the e-mail and the file
        page.keyboard.press("Enter")
        page.wait_for_selector("#appeal-status")
        appeal = Appeal.objects.get()
        assert appeal.grounds == GROUNDS and appeal.filed_via == "portal"

        tab_to(page, "withdraw")
        page.keyboard.press("Enter")
        page.wait_for_selector("text=Withdrawn at your request")
        appeal.refresh_from_db()
        assert appeal.status == "withdrawn"
    finally:
        context.close()


def test_the_notice_prints_without_the_portals_controls(browser, live_server, issued, artifacts):
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        sign_in(page, live_server, issued)
        page.emulate_media(media="print")
        assert not page.locator("header.top").is_visible()
        assert not page.locator("#appeal-link").is_visible()
        assert page.locator("#reasons").is_visible() and page.locator("#data-used").is_visible()
        page.screenshot(path=str(artifacts / "portal-notice-print.png"), full_page=True)
    finally:
        context.close()


def test_the_receipt_downloads(browser, live_server, issued, tmp_path):
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    page = context.new_page()
    try:
        sign_in(page, live_server, issued)
        with page.expect_download() as download:
            page.click("#receipt-link")
        path = tmp_path / "receipt.json"
        download.value.save_as(path)
        assert verify_path(path, keys.vkey()).startswith("OK: ")
    finally:
        context.close()
