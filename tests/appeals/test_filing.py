"""Filing an appeal: one per decision (the database holds it), only of a final decision and
within the model's appeal window; grounds, corrections checked against the schema, an
attachment by its content; the senior-only appeal task; withdrawal; e-mails via the outbox."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.db import IntegrityError, transaction
from django.test import Client
from django.utils import timezone

from appeals import attachments, services
from appeals.models import Appeal
from audit import sealer
from audit.models import AuditEvent
from core.errors import ApplicationError
from models_registry import services as registry
from outbox.models import Message
from reviews import services as queue
from reviews.models import Decision, ReviewTask
from tests.appeals.conftest import GROUNDS, claim_appeal, file

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(autouse=True)
def _files(settings, tmp_path):
    settings.APPEAL_FILES_DIR = tmp_path / "appeal-files"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def test_it_files_an_appeal_with_a_senior_only_task_due_by_the_sla(denied, settings):
    appeal = file(denied, corrections={"income": 72}, contact_email="p@example.org")
    task = appeal.task
    assert (task.kind, task.state, task.senior_only, task.decision_id) == (
        "appeal",
        "open",
        True,
        denied.pk,
    )
    assert task.priority > max(
        ReviewTask.objects.exclude(pk=task.pk).values_list("priority", flat=True), default=0
    )
    assert appeal.due_at - appeal.filed_at == timedelta(days=settings.APPEAL_SLA_DAYS)
    assert task.due_at == appeal.due_at
    assert (appeal.status, appeal.outcome_before, appeal.corrections) == (
        "submitted",
        "deny",
        {"income": 72.0},
    )
    filed = AuditEvent.objects.get(action="appeal.filed")
    payload = json.loads(filed.payload)
    assert (filed.object_type, filed.object_id, payload["appeal"]) == (
        "decision",
        str(denied.pk),
        appeal.pk,
    )
    # The log keeps digests of what the person wrote, not the text.
    sealer.seal_all()
    filed.refresh_from_db()
    assert GROUNDS not in filed.canonical and "p@example.org" not in filed.canonical
    assert payload["corrected_features"] == ["income"]


def test_only_one_appeal_per_decision(denied):
    file(denied)
    with pytest.raises(ApplicationError) as refused:
        file(denied)
    assert refused.value.code == "already_appealed"
    assert Appeal.objects.count() == 1


def test_the_database_holds_one_appeal_per_decision(denied):
    first = file(denied)
    with pytest.raises(IntegrityError), transaction.atomic():
        Appeal.objects.create(
            decision=denied,
            grounds=GROUNDS,
            filed_via="portal",
            filed_at=timezone.now(),
            due_at=timezone.now(),
            task=ReviewTask.objects.create(
                decision=denied,
                model_id=denied.model_id,
                kind="appeal",
                due_at=timezone.now(),
                created_at=timezone.now(),
            ),
            outcome_before="deny",
        )
    assert list(Appeal.objects.all()) == [first]


def test_a_decision_waiting_for_review_cannot_be_appealed_yet(pending):
    due = pending.tasks.get().due_at
    why = services.appealability(pending)
    assert (why.allowed, why.code, why.come_back) == (False, "not_final", due)
    assert f"{due:%d %B %Y}" in why.message
    with pytest.raises(ApplicationError) as refused:
        file(pending)
    assert refused.value.code == "not_final"
    assert refused.value.extra["come_back"] == due.isoformat()
    assert not ReviewTask.objects.filter(kind="appeal").exists()


def test_only_within_the_models_appeal_window(denied, tiny_model, erin):
    registry.policy_update(
        model=tiny_model, changes={"appeal_window_days": 30}, actor=erin, note="test"
    )
    until = denied.finalized_at + timedelta(days=30)
    assert services.appealability(denied).until == until
    assert services.appealability(denied, until - timedelta(seconds=1)).allowed
    why = services.appealability(denied, until + timedelta(seconds=1))
    assert (why.allowed, why.code) == (False, "window_closed")
    Decision.objects.filter(pk=denied.pk).update(finalized_at=timezone.now() - timedelta(days=31))
    denied.refresh_from_db()
    with pytest.raises(ApplicationError) as refused:
        file(denied)
    assert refused.value.code == "window_closed"


def test_the_default_window_is_180_days(denied):
    assert services.appealability(denied).until == denied.finalized_at + timedelta(days=180)


def test_it_names_every_bad_field(denied):
    with pytest.raises(ApplicationError) as refused:
        file(
            denied,
            grounds="too short",
            corrections={"income": -5, "debt": "a lot", "shoe_size": 9, "history": "poor"},
            contact_email="not an address",
        )
    fields = refused.value.fields
    assert set(fields) == {
        "grounds",
        "corrections.income",
        "corrections.debt",
        "corrections.shoe_size",
        "corrections.history",
        "contact_email",
    }
    assert "at least 0" in fields["corrections.income"][0]
    assert "already" in fields["corrections.history"][0]  # the decision already says poor
    assert not Appeal.objects.exists() and not ReviewTask.objects.filter(kind="appeal").exists()


@pytest.mark.parametrize("grounds", ["x" * 19, "x" * 5001, "   " + "x" * 10 + "   "])
def test_grounds_are_20_to_5000_characters(denied, grounds):
    with pytest.raises(ApplicationError) as refused:
        file(denied, grounds=grounds)
    assert set(refused.value.fields) == {"grounds"}


def test_it_takes_a_pdf_png_or_jpeg_by_content_not_by_name(denied):
    jpeg = b"\xff\xd8\xff" + b"1" * 9
    for data, kind in ((PDF, "application/pdf"), (PNG, "image/png"), (jpeg, "image/jpeg")):
        assert attachments.check("whatever.txt", data).content_type == kind
    for name, data in (("evil.pdf", b"<html><script>x</script>"), ("a.png", b"GIF89a....")):
        with pytest.raises(ApplicationError) as refused:
            attachments.check(name, data)
        assert "PDF, PNG or JPEG" in refused.value.fields["attachment"][0]


def test_it_refuses_an_attachment_over_5_mb(denied, settings):
    big = PDF + b"0" * (settings.APPEAL_ATTACHMENT_MAX_BYTES - len(PDF) + 1)
    with pytest.raises(ApplicationError) as refused:
        attachments.check("big.pdf", big)
    assert "5 MB" in refused.value.fields["attachment"][0]
    assert attachments.check("ok.pdf", big[:-1]).size == settings.APPEAL_ATTACHMENT_MAX_BYTES


def test_the_attachment_is_stored_outside_static_files_by_a_random_name(denied, settings):
    appeal = file(denied, attachment=("../../etc/passwd.pdf", PDF))
    path = attachments.path_of(appeal.attachment_path)
    assert path.parent == settings.APPEAL_FILES_DIR and path.read_bytes() == PDF
    assert "passwd" not in appeal.attachment_path and appeal.attachment_name == "passwd.pdf"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert not str(path).startswith(str(settings.BASE_DIR / "static"))


def test_a_refused_appeal_leaves_no_file(denied, settings):
    file(denied)
    with pytest.raises(ApplicationError):
        file(denied, attachment=("a.pdf", PDF))
    assert list(settings.APPEAL_FILES_DIR.iterdir()) == []


def test_it_is_in_review_once_a_senior_claims_its_task(denied, carol):
    appeal = file(denied)
    task = claim_appeal(carol)
    appeal.refresh_from_db()
    assert (task.pk, appeal.status) == (appeal.task_id, "in_review")
    assert appeal.review_started_at is not None
    queue.task_release(task_id=task.pk, reviewer=carol)
    appeal.refresh_from_db()
    assert appeal.status == "in_review"  # released: it stays in review
    assert AuditEvent.objects.filter(action="appeal.in_review").count() == 1


def test_reviewers_who_are_not_senior_are_never_given_an_appeal(denied, alice):
    file(denied)
    assert queue.task_claim_next(reviewer=alice) is None


def test_the_person_may_withdraw_before_it_is_decided(denied, carol):
    appeal = file(denied, contact_email="p@example.org")
    task = claim_appeal(carol)
    services.appeal_withdraw(appeal_id=appeal.pk, actor="person:x")
    appeal.refresh_from_db()
    task.refresh_from_db()
    assert (appeal.status, task.state) == ("withdrawn", "cancelled")
    with pytest.raises(ApplicationError) as refused:
        services.appeal_resolve(
            appeal_id=appeal.pk, senior=carol, result="upheld", reasons="The figures are right."
        )
    assert refused.value.code == "lease_lost"
    with pytest.raises(ApplicationError) as again:
        services.appeal_withdraw(appeal_id=appeal.pk, actor="person:x")
    assert again.value.code == "appeal_closed"
    assert AuditEvent.objects.filter(action="appeal.withdrawn").count() == 1
    assert [m.key for m in Message.objects.order_by("id")] == [
        f"appeal:{appeal.pk}:received",
        f"appeal:{appeal.pk}:withdrawn",
    ]


def test_it_writes_the_acknowledgement_to_the_outbox_and_never_the_code(
    denied, service, django_capture_on_commit_callbacks
):
    issued = services.access_code_issue(decision=denied, actor=service.user)
    with django_capture_on_commit_callbacks(execute=True):
        appeal = file(denied, contact_email="p@example.org")
    message = Message.objects.get(key=f"appeal:{appeal.pk}:received")
    assert (message.kind, message.scope, message.status) == (
        "email",
        f"appeal:{appeal.pk}",
        "delivered",
    )
    (sent,) = mail.outbox
    assert sent.to == ["p@example.org"] and issued.reference in sent.subject
    assert issued.access_code not in sent.body and issued.code not in sent.body


def test_no_address_no_email(denied):
    file(denied)
    assert not Message.objects.exists()


# --- the portal's form ----------------------------------------------------------------------


def portal(denied, service) -> Client:
    issued = services.access_code_issue(decision=denied, actor=service.user)
    client = Client()
    client.post(
        "/my-decision/sign-in/", {"reference": issued.reference, "access_code": issued.code}
    )
    return client


def test_the_person_files_an_appeal_on_the_portal(denied, service, tmp_path):
    client = portal(denied, service)
    upload = tmp_path / "letter.txt"  # named .txt, but a PDF by content
    upload.write_bytes(PDF)
    with upload.open("rb") as handle:
        response = client.post(
            "/my-decision/appeal/",
            {
                "grounds": GROUNDS,
                "correct_income": "72",
                "correct_history": "",
                "correct_bankrupt": "",
                "contact_email": "",
                "attachment": handle,
            },
        )
    assert response.status_code == 302
    appeal = Appeal.objects.get()
    assert (appeal.filed_via, appeal.corrections, appeal.attachment_type) == (
        "portal",
        {"income": 72.0},
        "application/pdf",
    )
    filed = AuditEvent.objects.get(action="appeal.filed")
    assert filed.actor == f"person:{appeal.decision.access.reference}"
    page = client.get("/my-decision/").content.decode()
    assert "waiting for a senior reviewer" in page and 'id="withdraw"' in page


def test_the_portal_form_shows_every_error_and_keeps_what_was_typed(denied, service):
    client = portal(denied, service)
    response = client.post(
        "/my-decision/appeal/", {"grounds": "short", "correct_income": "lots", "correct_debt": ""}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "20 to 5,000 characters" in page and "must be a number" in page
    assert 'value="lots"' in page and "short</textarea>" in page
    assert not Appeal.objects.exists()


def test_the_portal_says_when_a_pending_decision_can_be_appealed(pending, service):
    page = portal(pending, service).get("/my-decision/appeal/").content.decode()
    due = pending.tasks.get().due_at
    assert "still waiting for a person to review it" in page and f"{due:%-d %B %Y}" in page
    assert 'id="appeal-form"' not in page


def test_the_portal_refuses_a_body_over_the_limit_before_reading_it(denied, service, settings):
    client = portal(denied, service)
    response = client.post(
        "/my-decision/appeal/",
        data=b"x",
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(settings.APPEAL_ATTACHMENT_MAX_BYTES + 300 * 1024),
    )
    assert response.status_code == 413 and not Appeal.objects.exists()


def test_the_portal_form_checks_csrf(denied, service):
    issued = services.access_code_issue(decision=denied, actor=service.user)
    client = Client(enforce_csrf_checks=True)
    page = client.get("/my-decision/").content.decode()
    token = page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    client.post(
        "/my-decision/sign-in/",
        {"reference": issued.reference, "access_code": issued.code, "csrfmiddlewaretoken": token},
    )
    response = client.post("/my-decision/appeal/", {"grounds": GROUNDS})
    assert response.status_code == 403 and not Appeal.objects.exists()


def test_the_person_withdraws_on_the_portal(denied, service):
    client = portal(denied, service)
    appeal = file(denied)
    assert client.post("/my-decision/appeal/withdraw/").status_code == 302
    appeal.refresh_from_db()
    assert appeal.status == "withdrawn"
    assert "Withdrawn at your request" in client.get("/my-decision/").content.decode()
