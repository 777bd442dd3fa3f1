"""A reviewer works the queue in a real browser, by keyboard."""

from __future__ import annotations

import pytest

from models_registry import services as registry
from reviews.models import Decision, Review
from reviews.services import decisions_ingest
from tests.e2e.conftest import log_in, wait_for_case
from tests.fixtures import PASSWORD, item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def start_reviewing(page, live_server, model, service, erin, *, cases: int) -> None:
    """`cases` decisions wait for review; alice logs in, starts reviewing and has the first."""
    registry.policy_update(model=model, changes={"review_all": True}, actor=erin, note="test")
    decisions_ingest(items=[item(n) for n in range(1, cases + 1)], actor=service.user)
    log_in(page, live_server, "alice", PASSWORD)
    page.goto(f"{live_server.url}/review/")
    page.click("#start")
    wait_for_case(page)


def test_a_reviewer_overrides_by_keyboard_and_lands_on_the_next_case(
    page, live_server, tiny_model, service, erin, alice, artifacts
):
    start_reviewing(page, live_server, tiny_model, service, erin, cases=2)
    first_url = page.url
    page.screenshot(path=str(artifacts / "case-page.png"), full_page=True)
    assert page.locator("#model-answer").is_visible()
    assert page.locator("#lease-left").inner_text().startswith("14:")  # the countdown runs

    page.keyboard.press("?")
    assert page.locator("#help").get_attribute("open") is not None
    page.keyboard.press("o")  # override: focus goes to the outcome
    assert page.evaluate("document.activeElement.id") == "override-outcome"
    page.keyboard.press("Tab")  # reason code
    page.keyboard.press("Tab")  # rationale
    page.keyboard.type("Income was verified by phone; the model missed it.")
    page.keyboard.press("Control+Enter")

    page.wait_for_url(lambda url: url != first_url and "/review/tasks/" in url)
    assert page.get_by_role("status").first.inner_text().startswith("Saved. You said")
    review = Review.objects.get()
    assert review.verdict == "override" and review.reviewer == alice
    assert review.rationale == "Income was verified by phone; the model missed it."
    decision = Decision.objects.get(pk=review.decision_id)
    assert decision.final_outcome != decision.model_outcome
    page.screenshot(path=str(artifacts / "next-case.png"), full_page=True)


def test_agree_needs_a_second_key_and_works_without_javascript(
    browser, live_server, tiny_model, service, erin, alice
):
    registry.policy_update(model=tiny_model, changes={"review_all": True}, actor=erin, note="test")
    decisions_ingest(items=[item(1)], actor=service.user)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    log_in(page, live_server, "alice", PASSWORD)
    page.goto(f"{live_server.url}/review/")
    page.click("#start")
    page.click("#agree")
    page.wait_for_url(f"{live_server.url}/review/")  # nothing more to do: back to the queue
    assert Review.objects.get().verdict == "agree"
    context.close()


def _expire_lease(reviewer) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from reviews.models import ReviewTask

    ReviewTask.objects.filter(assignee=reviewer, state="claimed").update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


def test_a_reviewer_whose_lease_expired_gets_their_rationale_back(
    page, live_server, tiny_model, service, erin, alice, artifacts
):
    start_reviewing(page, live_server, tiny_model, service, erin, cases=2)
    page.keyboard.press("o")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.type("A long, careful rationale that must not be lost.")
    _expire_lease(alice)
    page.keyboard.press("Control+Enter")

    page.wait_for_selector("#not-saved")
    assert "your answer was not saved" in page.locator("#not-saved").inner_text()
    assert "expired" in page.locator("#reason").inner_text()
    typed = page.locator("#typed-text").input_value()
    assert typed == "A long, careful rationale that must not be lost."
    page.screenshot(path=str(artifacts / "answer-not-saved.png"), full_page=True)
    assert not Review.objects.exists()
    page.click("#next")
    wait_for_case(page)  # the next case (the expired one, back in the queue)


def test_the_page_script_says_so_when_renewing_finds_the_lease_lost(
    page, live_server, tiny_model, service, erin, alice
):
    start_reviewing(page, live_server, tiny_model, service, erin, cases=1)
    case_url = page.url
    page.click("#renew")  # renews in place: the page stays, the lease is extended
    page.wait_for_timeout(300)
    assert page.url == case_url and page.locator("#lease-lost").is_hidden()
    _expire_lease(alice)
    page.click("#renew")
    page.wait_for_selector("#lease-lost", state="visible")
    assert "expired" in page.locator("#lease-lost").inner_text()
    assert page.locator("#lease-left").inner_text() == "none"
    assert page.url == case_url  # what the reviewer typed is still on the page
