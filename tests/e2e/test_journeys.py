"""One journey per role in a real browser (issue 14): a reviewer, a senior, an auditor and a
model owner go through their workspace. axe-core reports no serious or critical violation on
any page they visit, and the case, adjudication, audit decision and owner pages are
photographed at 1280×800 into test-artifacts/ (ignored by git)."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone
from playwright.sync_api import expect

from audit.models import Checkpoint
from audit.services import checkpoint_sign
from models_registry import services as registry
from models_registry.models import ModelVersion, RoutingPolicy
from reviews.models import Decision, Review, ReviewTask
from reviews.services import decisions_ingest, review_submit, task_claim_next, task_escalate
from tests.e2e.conftest import log_in, wait_for_case
from tests.fixtures import PASSWORD, item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREEN = {"width": 1280, "height": 800}
AXE = Axe()


@pytest.fixture
def screen(browser):
    context = browser.new_context(viewport=SCREEN)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def checked(page, name: str) -> None:
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


def photo(page, artifacts, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}-1280x800.png"))


def above_the_fold(page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    return box is not None and box["y"] + box["height"] <= SCREEN["height"]


def review_all(model, erin, **policy) -> None:
    registry.policy_update(
        model=model, changes={"review_all": True, **policy}, actor=erin, note="e2e"
    )


# --- a reviewer -----------------------------------------------------------------------------


def test_a_reviewer_resumes_works_by_keyboard_and_sees_their_answers(
    screen, live_server, tiny_model, service, erin, alice, artifacts
):
    page = screen
    review_all(tiny_model, erin)
    decisions_ingest(items=[item(n) for n in range(1, 4)], actor=service.user)
    held = task_claim_next(reviewer=alice)  # claimed earlier, in another tab
    log_in(page, live_server, "alice", PASSWORD)
    page.goto(f"{live_server.url}/review/")
    assert "Resume reviewing (you hold 1 case)" in page.locator("#start").inner_text()
    assert f"Case {held.decision_id}" in page.locator("#held").inner_text()
    checked(page, "queue")

    page.click("#start")
    wait_for_case(page)
    assert page.url.endswith(f"/review/tasks/{held.pk}/")  # the held case, not a new claim
    assert ReviewTask.objects.filter(assignee=alice, state="claimed").count() == 1
    # At 1280×800 the model's answer, its confidence and the reasons sit beside the buttons.
    assert above_the_fold(page, "#model-answer .answer")
    assert above_the_fold(page, "#model-answer ul.reasons") and above_the_fold(page, "#agree")
    assert "pts" in page.locator("#weights table.bars").inner_text()
    assert page.locator("#lease-announce").inner_text() == ""  # silent while time is ample
    checked(page, "case")
    photo(page, artifacts, "case")

    page.keyboard.press("?")
    assert page.locator("#help").get_attribute("open") is not None
    page.keyboard.press("o")
    assert page.evaluate("document.activeElement.id") == "override-outcome"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.type("Income was verified by phone; the form was misread.")
    page.keyboard.press("Control+Enter")
    page.wait_for_url(lambda url: "/review/tasks/" in url and not url.endswith(f"/{held.pk}/"))
    wait_for_case(page)
    assert Review.objects.get(task=held).verdict == "override"

    # The lease is told at thresholds only: a minute left is announced once.
    current = ReviewTask.objects.get(assignee=alice, state="claimed")
    ReviewTask.objects.filter(pk=current.pk).update(
        lease_expires_at=timezone.now() + timedelta(seconds=62)
    )
    page.reload()
    wait_for_case(page)
    expect(page.locator("#lease-announce")).to_have_text(
        "One minute left on your lease.", timeout=10_000
    )

    page.goto(f"{live_server.url}/review/")
    recent = page.locator("#recent").inner_text()
    assert f"Case {held.decision_id}" in recent
    checked(page, "queue with answers")


# --- a senior ---------------------------------------------------------------------------------


def test_a_senior_adjudicates_from_their_own_queue_and_reads_the_statistics(
    screen, live_server, tiny_model, service, erin, alice, bob, carol, artifacts
):
    page = screen
    review_all(tiny_model, erin, reviewers_required=2)
    decisions_ingest(items=[item(n) for n in range(1, 4)], actor=service.user)
    first = task_claim_next(reviewer=alice)
    review_submit(task_id=first.pk, reviewer=alice, verdict="agree", rationale="Fine.")
    second = task_claim_next(reviewer=bob)
    model_said = Decision.objects.get(pk=second.decision_id).model_outcome
    other = next(label for label in tiny_model.labels if label != model_said)
    review_submit(
        task_id=second.pk, reviewer=bob, verdict="override", outcome=other,
        reason_code="missing_information", rationale="The pay slips show less income.",
    )  # fmt: skip
    escalated = task_claim_next(reviewer=alice)
    task_escalate(task_id=escalated.pk, reviewer=alice, note="The documents contradict.")

    log_in(page, live_server, "carol", PASSWORD)
    page.goto(f"{live_server.url}/review/")
    queue = page.locator("#queue-adjudication").inner_text()
    assert "2 waiting for you" in queue and "the oldest since" in queue
    assert page.locator("#queue-appeal").is_visible()
    checked(page, "senior queue")

    page.click("#start-adjudication")
    wait_for_case(page)
    answers = page.locator("#answers").inner_text()
    assert "alice" in answers and "bob" in answers
    assert "Information the model did not have" in answers
    assert "The pay slips show less income." in answers
    assert page.locator("#escalate-box").count() == 0
    assert page.get_by_role("button", name=f"Decide: {other}").is_visible()
    checked(page, "adjudication")
    photo(page, artifacts, "adjudication")

    adjudication_url = page.url
    page.select_option("#reason-code", "missing_information")
    page.fill("#rationale", "The pay slips are the better evidence.")
    page.get_by_role("button", name=f"Decide: {other}").click()
    page.wait_for_url(lambda url: url != adjudication_url and "/review/tasks/" in url)
    wait_for_case(page)  # the next adjudication: the escalated case
    assert "The documents contradict." in page.locator(".note").inner_text()
    settled = Decision.objects.get(pk=second.decision_id)
    assert (settled.final_outcome, settled.finalized_by) == (other, "adjudicator")
    checked(page, "escalated case")

    page.goto(f"{live_server.url}/review/tasks/")
    checked(page, "task list")
    page.fill("#id_find", str(escalated.decision_id))
    page.click("#task-filters button[type=submit]")
    assert page.locator("#tasks tbody tr").count() >= 1
    assert f"Case {escalated.decision_id}" in page.locator("#tasks").inner_text()
    page.select_option("#id_kind", "adjudication")
    page.click("#task-filters button[type=submit]")
    checked(page, "task list filtered")

    page.goto(f"{live_server.url}/review/stats/")
    assert "too few (n=1)" in page.locator("#stats").inner_text()
    checked(page, "statistics")
    page.click("#stats >> text=alice")
    page.wait_for_selector("#weeks")
    checked(page, "reviewer page")


# --- an auditor -------------------------------------------------------------------------------


def test_an_auditor_searches_reads_a_timeline_signs_and_exports(
    screen, live_server, tiny_model, service, erin, alice, dave, artifacts
):
    page = screen
    review_all(tiny_model, erin)
    decisions = [
        x.decision for x in decisions_ingest(items=[item(n) for n in range(1, 4)],
                                            actor=service.user)
    ]  # fmt: skip
    task = task_claim_next(reviewer=alice)
    review_submit(task_id=task.pk, reviewer=alice, verdict="override",
                  outcome=next(x for x in tiny_model.labels if x != task.decision.model_outcome),
                  reason_code="model_error", rationale="Verified by phone.")  # fmt: skip
    checkpoint_sign()
    log_in(page, live_server, "dave", PASSWORD)

    page.goto(f"{live_server.url}/audit/")
    checked(page, "audit home")
    signed = Checkpoint.objects.count()
    page.click("#sign-now")
    page.wait_for_selector("text=Signed a checkpoint over")
    assert Checkpoint.objects.count() == signed + 1

    page.goto(f"{live_server.url}/audit/events/?actor=carol&since=yesterday")
    assert "Not a date" in page.locator("#id_since_error").inner_text()
    described = page.get_attribute("#id_since", "aria-describedby")
    assert described == "id_since_helptext id_since_error"
    assert page.locator("#filter-errors").is_visible()
    checked(page, "events refused")

    reviewed = task.decision
    page.fill("#find-decision", reviewed.external_id)
    page.press("#find-decision", "Enter")
    page.wait_for_url(f"{live_server.url}/audit/decisions/{reviewed.pk}/")
    timeline = page.locator("#timeline").inner_text()
    assert "alice answered the first review" in timeline and "Final outcome" in timeline
    page.locator("#timeline details").first.click()  # the logged event, one click away
    assert '"action":"decision.ingested"' in page.locator("#timeline pre").first.inner_text()
    checked(page, "audit decision")
    photo(page, artifacts, "audit-decision")

    page.click("#case-links a")
    wait_for_case_page = page.wait_for_selector("#case")
    assert wait_for_case_page is not None and "/review/tasks/" in page.url
    crumbs = page.locator(".crumbs a").first.get_attribute("href")
    assert crumbs == "/review/tasks/"  # a breadcrumb an auditor may follow
    checked(page, "case page for an auditor")

    page.goto(f"{live_server.url}/audit/exports/")
    page.fill("#id_model", "tiny")
    page.click("#export-form button[type=submit]")
    page.wait_for_selector("text=is ready")
    assert "model tiny" in page.locator("#exports").inner_text()
    checked(page, "exports")
    with page.expect_download() as download:
        page.locator("#exports a", has_text="download").first.click()
    with zipfile.ZipFile(io.BytesIO(open(download.value.path(), "rb").read())) as package:
        names = set(package.namelist())
        header = package.read("decisions.csv").decode().splitlines()[0]
        reviews = package.read("reviews.csv").decode()
    assert {"decisions.csv", "reviews.csv", "manifest.json"} <= names
    assert "feature.income" in header and "group.race" in header and ",features," not in header
    assert "alice" in reviews and "Verified by phone." in reviews
    assert len(decisions) == 3


# --- a model owner ----------------------------------------------------------------------------


def test_an_owner_reads_activity_tries_a_policy_grants_a_service_and_uploads(
    screen, live_server, tiny_model, service, other_service, erin, alice, tiny_artifact,
    artifacts, tmp_path,
):  # fmt: skip
    page = screen
    review_all(tiny_model, erin)
    decisions_ingest(items=[item(n, features={"income": 30.0 * n}) for n in range(1, 9)],
                     actor=service.user)  # fmt: skip
    task = task_claim_next(reviewer=alice)
    review_submit(task_id=task.pk, reviewer=alice, verdict="agree")
    log_in(page, live_server, "erin", PASSWORD)

    page.goto(f"{live_server.url}/models/tiny/")
    checked(page, "model card")
    photo(page, artifacts, "owner-model")
    page.fill("#id_service", "svc-other-scorer")
    page.click("#grant-form button[type=submit]")
    page.wait_for_selector("text=svc-other-scorer may now use tiny")
    assert tiny_model.services.filter(username="svc-other-scorer").exists()

    page.click("#activity-link")
    page.wait_for_selector("#volume")
    assert "8 since" in page.locator("#volume").inner_text()
    assert "Waiting" in page.locator("#queue").inner_text()
    checked(page, "activity")
    photo(page, artifacts, "owner-activity")

    page.goto(f"{live_server.url}/models/tiny/policy/")
    checked(page, "policy")
    page.uncheck("#id_review_all")
    page.fill("#id_confidence_threshold", "0")
    rule = '[{"name": "big-income", "when": {"field": "income", "op": "ge", "value": 150}}]'
    page.fill("#id_high_stakes", rule)
    page.click("#preview")
    page.wait_for_selector("#what-if")
    table = page.locator("#what-if-reasons").inner_text()
    assert re.search(r"High stakes\s+0\s+4", table) and re.search(r"Review-all.*\s+8\s+0", table)
    checked(page, "what-if")
    photo(page, artifacts, "owner-what-if")
    assert RoutingPolicy.objects.filter(model=tiny_model).count() == 2  # nothing saved

    page.click("#save-policy")  # the draft is still in the form, but no note yet
    page.wait_for_selector("#id_note_error")
    page.fill("#id_note", "High incomes get a person's look; the breaker is off again.")
    page.click("#save-policy")
    page.wait_for_selector("text=Routing policy saved as a new version.")
    assert RoutingPolicy.objects.filter(model=tiny_model).count() == 3

    page.goto(f"{live_server.url}/models/tiny/versions/new/")
    checked(page, "upload")
    artifact = tmp_path / "tiny.skops"
    artifact.write_bytes(tiny_artifact)
    page.set_input_files("#id_artifact", str(artifact))
    page.fill("#id_notes", "Uploaded from the page.")
    page.click("#upload")
    page.wait_for_selector("text=Version 2 registered as a candidate")
    assert ModelVersion.objects.get(model=tiny_model, number=2).notes == "Uploaded from the page."
    checked(page, "model card after upload")
