from __future__ import annotations

import pytest

from tests.e2e.conftest import log_in
from tests.fixtures import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_reviewer_logs_in_and_is_shown_the_review_queue(page, live_server, alice, artifacts):
    log_in(page, live_server, "alice", PASSWORD)
    page.wait_for_selector("text=Review queue")
    page.click("a.card[href='/review/']")
    page.wait_for_url(f"{live_server.url}/review/")
    assert page.locator("h1").inner_text() == "Review queue"
    page.screenshot(path=str(artifacts / "review-queue.png"), full_page=True)


def test_a_wrong_password_says_so(page, live_server, alice):
    log_in(page, live_server, "alice", "not-the-password")
    assert page.get_by_role("alert").inner_text().startswith("Your username and password")
