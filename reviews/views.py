"""The reviewer's workspace. Every form works without JavaScript; review.js only adds keys,
the lease countdown and lease renewal."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from audit.services import viewed
from core import roles as r
from core.errors import ApplicationError, error_body
from core.permissions import role_required
from reviews import presentation, selectors, services
from reviews.models import ReviewTask
from reviews.stats import DEFAULT_DAYS, reviewer_stats, stats_since


@role_required(r.REVIEWER)
def queue(request: HttpRequest) -> HttpResponse:
    # Lazily, as a claim does (cheap when nothing expired): tasks whose lease ran out count as
    # waiting, so "Start reviewing" is not greyed out while they wait for the beat.
    services.leases_expire()
    return render(request, "reviews/queue.html", selectors.queue_summary(request.user))


@require_POST
@role_required(r.REVIEWER)
def next_task(request: HttpRequest) -> HttpResponse:
    return _to_next(request)


def _to_next(request: HttpRequest) -> HttpResponse:
    task = services.task_claim_next(reviewer=request.user)
    if task is None:
        messages.info(request, "Nothing is waiting for you right now.")
        return redirect("reviews:queue")
    return redirect("reviews:case", task_id=task.pk)


def _task(request: HttpRequest, task_id: int) -> ReviewTask:
    task = selectors.task_for(request.user, task_id)
    if task is None:
        raise Http404("No such task.")
    return task


@role_required(r.REVIEWER, r.AUDITOR)
def case(
    request: HttpRequest, task_id: int, *, errors: dict | None = None, status: int = 200
) -> HttpResponse:
    task = _task(request, task_id)
    if task.kind == ReviewTask.Kind.APPEAL:
        # An appeal is decided on its own page, with the grounds and the person's corrections
        # (the appeals app, above this one: reached by its URL name, not imported).
        return redirect("appeals:task", task_id=task.pk)
    if not errors:
        viewed(
            actor=request.user,
            action="case.viewed",
            object_type="decision",
            object_id=task.decision_id,
            task=task.pk,
        )
    context = presentation.case_context(task, request.user)
    context.update(errors=errors or {}, posted=request.POST if errors else {})
    return render(request, "reviews/case.html", context, status=status)


@require_POST
@role_required(r.REVIEWER)
def decide(request: HttpRequest, task_id: int) -> HttpResponse:
    keys = ("verdict", "outcome", "reason_code", "rationale", "explanation_for_person")
    data = {key: request.POST.get(key, "") for key in keys}
    try:
        review = services.review_submit(task_id=task_id, reviewer=request.user, **data)
    except ApplicationError as exc:
        return _not_saved(
            request, task_id, exc, what="answer", text=data["rationale"], typed=_choices(data)
        )
    messages.success(request, presentation.after_review_message(review, request.user))
    return _to_next(request)


def _refused(request: HttpRequest, task_id: int, exc: ApplicationError) -> HttpResponse:
    if exc.status == 404:
        raise Http404(exc.message)
    if exc.code == "invalid":
        return case(request, task_id, errors=exc.fields, status=400)
    messages.error(request, exc.message)
    return redirect("reviews:queue")


def _not_saved(
    request: HttpRequest,
    task_id: int,
    exc: ApplicationError,
    *,
    what: str,
    text: str,
    typed: list[tuple[str, str]] | None = None,
) -> HttpResponse:
    """What the reviewer wrote was refused (a lost lease, a decision settled meanwhile): say
    why, and show it back, so that minutes of typing are not lost with the lease."""
    if exc.code == "invalid" or exc.status == 404:
        return _refused(request, task_id, exc)
    context = {"message": exc.message, "what": what, "text": text, "typed": typed or []}
    context["lease_lost"] = exc.code == "lease_lost"
    return render(request, "reviews/not_saved.html", context, status=exc.status)


def _choices(data: dict[str, str]) -> list[tuple[str, str]]:
    shown = [("Verdict", "verdict"), ("Outcome", "outcome"), ("Reason code", "reason_code")]
    return [(label, data[key]) for label, key in shown if data[key]]


@require_POST
@role_required(r.REVIEWER)
def release(request: HttpRequest, task_id: int) -> HttpResponse:
    try:
        services.task_release(task_id=task_id, reviewer=request.user)
    except ApplicationError as exc:
        return _refused(request, task_id, exc)
    messages.info(request, "The task is back in the queue.")
    return redirect("reviews:queue")


@require_POST
@role_required(r.REVIEWER)
def escalate(request: HttpRequest, task_id: int) -> HttpResponse:
    note = request.POST.get("note", "")
    try:
        services.task_escalate(task_id=task_id, reviewer=request.user, note=note)
    except ApplicationError as exc:
        return _not_saved(request, task_id, exc, what="escalation", text=note)
    messages.success(request, "Escalated to a senior reviewer.")
    return _to_next(request)


@require_POST
@role_required(r.REVIEWER)
def renew(request: HttpRequest, task_id: int) -> HttpResponse:
    wants_json = "application/json" in request.headers.get("Accept", "")
    try:
        task = services.task_renew(task_id=task_id, reviewer=request.user)
    except ApplicationError as exc:
        if wants_json:  # the shape of every API error, for the page's script to show
            body = error_body(exc.code, exc.message, exc.fields)
            return JsonResponse(body, status=exc.status)
        return _refused(request, task_id, exc)
    if wants_json:
        return JsonResponse({"lease_expires_at": task.lease_expires_at.isoformat()})
    messages.info(request, "Your lease is renewed.")
    return redirect(reverse("reviews:case", args=[task_id]))


@role_required(r.SENIOR_REVIEWER, r.AUDITOR)
def stats(request: HttpRequest) -> HttpResponse:
    thresholds = {
        "agree": settings.AUTOMATION_BIAS_AGREE_RATE,
        "speed": settings.AUTOMATION_BIAS_SPEED_RATIO,
        "min_reviews": settings.AUTOMATION_BIAS_MIN_REVIEWS,
    }
    days = request.GET.get("days") or str(DEFAULT_DAYS)
    context = {"thresholds": thresholds, "days": days, "rows": [], "errors": {}}
    try:
        context["rows"] = reviewer_stats(since=stats_since(days))
    except ApplicationError as exc:
        context["errors"] = exc.fields
        return render(request, "reviews/stats.html", context, status=exc.status)
    return render(request, "reviews/stats.html", context)
