"""The reviewer's workspace. Every form works without JavaScript; review.js only adds keys,
the lease countdown and lease renewal."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from audit.services import viewed
from core import roles as r
from core.errors import ApplicationError, error_body
from core.permissions import role_required
from reviews import presentation, queues, selectors, services
from reviews.forms import TaskFilterForm
from reviews.models import ReviewTask
from reviews.stats import (
    DEFAULT_DAYS,
    reviewer_stats,
    reviewer_trend,
    simulated_reviews,
    stats_since,
)
from reviews.svg import trend_chart


@role_required(r.REVIEWER)
def queue(request: HttpRequest) -> HttpResponse:
    # Lazily, as a claim does (cheap when nothing expired): tasks whose lease ran out count as
    # waiting, so "Start reviewing" is not greyed out while they wait for the beat.
    services.leases_expire()
    context = selectors.queue_summary(request.user)
    context.update(
        held=queues.held_tasks(request.user),
        senior_queues=queues.senior_queues(request.user),
        recent=queues.recent_answers(request.user),
        may_list=queues.may_list_tasks(request.user),
    )
    return render(request, "reviews/queue.html", context)


# The queues a "Start" button may name: the senior's own (adjudications) or any task.
STARTS = {"": None, ReviewTask.Kind.ADJUDICATION: ReviewTask.Kind.ADJUDICATION}


@require_POST
@role_required(r.REVIEWER)
def next_task(request: HttpRequest) -> HttpResponse:
    kind = request.POST.get("kind", "")
    if kind not in STARTS or (kind and not r.has_role(request.user, r.SENIOR_REVIEWER)):
        messages.error(request, "There is no such queue for you.")
        return redirect("reviews:queue")
    return _to_next(request, kind=STARTS[kind])


def _to_next(request: HttpRequest, *, kind: str | None = None) -> HttpResponse:
    """Back to the task the reviewer has held longest (one lease at a time is enough), or a
    new claim when they hold none."""
    held = queues.oldest_held(request.user, kind=kind)
    if held is not None:
        messages.info(request, "You already hold this case: here it is again.")
        return redirect("reviews:case", task_id=held.pk)
    task = services.task_claim_next(reviewer=request.user, kind=kind)
    if task is None:
        what = "No adjudication" if kind else "Nothing"
        messages.info(request, f"{what} is waiting for you right now.")
        return redirect("reviews:queue")
    return redirect("reviews:case", task_id=task.pk)


@role_required(r.SENIOR_REVIEWER, r.AUDITOR)
def task_list(request: HttpRequest) -> HttpResponse:
    form = TaskFilterForm(request.GET or None)
    context = {"form": form, "rows": [], "listed": False}
    if request.GET and not form.is_valid():
        return render(request, "reviews/tasks.html", context, status=400)
    filters = form.filters() if request.GET else queues.TaskFilters()
    context.update(queues.task_list(request.user, filters), listed=True)
    return render(request, "reviews/tasks.html", context)


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
    if request.POST.get("adjudicate"):
        # A senior decides an outcome ("Decide: approve"); against the model's, it overrides.
        data["verdict"] = _adjudication_verdict(task_id, data["outcome"])
    try:
        review = services.review_submit(task_id=task_id, reviewer=request.user, **data)
    except ApplicationError as exc:
        return _not_saved(
            request, task_id, exc, what="answer", text=data["rationale"], typed=_choices(data)
        )
    messages.success(request, presentation.after_review_message(review, request.user))
    # A senior who settles an adjudication goes on with the next one.
    adjudicating = review.kind == ReviewTask.Kind.ADJUDICATION
    return _to_next(request, kind=ReviewTask.Kind.ADJUDICATION if adjudicating else None)


def _adjudication_verdict(task_id: int, outcome: str) -> str:
    model_outcome = (
        ReviewTask.objects.filter(pk=task_id)
        .values_list("decision__model_outcome", flat=True)
        .first()
    )
    return "agree" if outcome and outcome == model_outcome else "override"


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
    context["kappa_min"] = settings.KAPPA_MIN_PAIRS
    try:
        since = stats_since(days)
        context["rows"] = reviewer_stats(since=since)
        context["simulated"] = simulated_reviews(since=since)
    except ApplicationError as exc:
        context["errors"] = exc.fields
        return render(request, "reviews/stats.html", context, status=exc.status)
    return render(request, "reviews/stats.html", context)


@role_required(r.SENIOR_REVIEWER, r.AUDITOR)
def reviewer_page(request: HttpRequest, username: str) -> HttpResponse:
    """One reviewer's statistics and their trend, week by week."""
    if not User.objects.filter(username=username).exists():
        raise Http404("No such reviewer.")
    days = request.GET.get("days") or str(DEFAULT_DAYS)
    context = {"reviewer": username, "days": days, "errors": {}, "weeks": [], "row": None}
    context["kappa_min"] = settings.KAPPA_MIN_PAIRS
    try:
        since = stats_since(days)
    except ApplicationError as exc:
        context["errors"] = exc.fields
        return render(request, "reviews/reviewer.html", context, status=exc.status)
    rows = [row for row in reviewer_stats(since=since) if row.reviewer == username]
    weeks = reviewer_trend(reviewer=username, since=since)
    context.update(row=rows[0] if rows else None, weeks=weeks, chart=trend_chart(weeks))
    context["simulated"] = simulated_reviews(since=since, reviewer=username)
    return render(request, "reviews/reviewer.html", context)
