"""Staff pages of appeals: the list (seniors, auditors), an appeal's page, where the senior
who holds its task decides it, and the attachment download."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from appeals import attachments, selectors, services
from appeals.models import Appeal
from appeals.notice import STATUS_TEXT
from audit.services import viewed
from core import roles as r
from core.errors import ApplicationError
from core.permissions import role_required
from reviews import presentation
from reviews.models import ReviewTask
from reviews.selectors import decision_history, role_sight
from reviews.services import task_claim_next

READERS = selectors.READERS
LIST_SHOWN = 200


@role_required(*READERS)
def appeal_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status") or None
    if status not in dict(Appeal.Status.choices):
        status = None
    overdue = {"yes": True, "no": False}.get(request.GET.get("overdue", ""))
    model = request.GET.get("model") or None
    appeals = selectors.appeals_filtered(request.user, model=model, status=status, overdue=overdue)
    rows = list(appeals.order_by("-id")[:LIST_SHOWN])
    context = {
        "appeals": rows,
        "more": len(rows) == LIST_SHOWN,
        "now": timezone.now(),
        "statuses": Appeal.Status.choices,
        "filters": {
            "status": status or "",
            "overdue": request.GET.get("overdue", ""),
            "model": model or "",
        },
        "is_senior": r.has_role(request.user, r.SENIOR_REVIEWER),
        "sla_days": settings.APPEAL_SLA_DAYS,
    }
    return render(request, "appeals/list.html", context)


@require_POST
@role_required(r.SENIOR_REVIEWER)
def claim_next(request: HttpRequest) -> HttpResponse:
    task = task_claim_next(reviewer=request.user, kind=ReviewTask.Kind.APPEAL)
    if task is None:
        messages.info(
            request, "No appeal is waiting for you (none, or only ones you took part in)."
        )
        return redirect("appeals:list")
    return redirect("appeals:task", task_id=task.pk)


@role_required(*READERS)
def by_task(request: HttpRequest, task_id: int) -> HttpResponse:
    appeal = selectors.appeals_visible_to(request.user).filter(task_id=task_id).first()
    if appeal is None:
        raise Http404("No such appeal.")
    return redirect("appeals:detail", appeal_id=appeal.pk)


def _appeal(request: HttpRequest, appeal_id: int) -> Appeal:
    appeal = (
        selectors.appeals_visible_to(request.user)
        .select_related("decision__model_version", "decided_by", "task__assignee")
        .defer("decision__model_version__artifact")
        .filter(pk=appeal_id)
        .first()
    )
    if appeal is None:
        raise Http404("No such appeal.")
    return appeal


@role_required(*READERS)
def appeal_detail(
    request: HttpRequest, appeal_id: int, *, errors: dict | None = None, status: int = 200
) -> HttpResponse:
    appeal = _appeal(request, appeal_id)
    if not errors:
        _viewed(request, appeal, "appeal.viewed")
    context = case_context(appeal, request)
    context.update(errors=errors or {}, posted=request.POST if errors else {})
    return render(request, "appeals/case.html", context, status=status)


def _viewed(request: HttpRequest, appeal: Appeal, action: str, **payload) -> None:
    viewed(
        actor=request.user,
        action=action,
        object_type="decision",
        object_id=appeal.decision_id,
        appeal=appeal.pk,
        **payload,
    )


def case_context(appeal: Appeal, request: HttpRequest) -> dict:
    decision, task = appeal.decision, appeal.task
    model = decision.model
    explanation = decision.explanation if isinstance(decision.explanation, dict) else {}
    now = timezone.now()
    holder = task.state == ReviewTask.State.CLAIMED and task.assignee_id == request.user.pk
    lease_left = (task.lease_expires_at - now).total_seconds() if holder else None
    current = decision.features
    return {
        "appeal": appeal,
        "status_text": STATUS_TEXT[appeal.status],
        "overdue": appeal.is_open and appeal.due_at < now,
        "decision": decision,
        "model": model,
        "task": task,
        "holder": holder,
        "lease_seconds": max(0, int(lease_left)) if lease_left is not None else None,
        "features": presentation.feature_rows(model.features, current),
        "corrections": [
            {
                "label": presentation.humanize(name),
                "current": presentation.value_text(model.feature(name), current.get(name)),
                "corrected": presentation.value_text(model.feature(name), value),
            }
            for name, value in appeal.corrections.items()
        ],
        "corrected": selectors.corrected_score(appeal),
        "confidence": f"{decision.confidence:.1%}",
        "explanation": presentation.explanation_bars(decision.explanation, model.features),
        "counterfactual": presentation.counterfactual_text(
            explanation.get("counterfactual"), model.features
        ),
        "reviews": [
            {"review": review, "public_reason": presentation.public_reason(review.reason_code)}
            for review in selectors.reviews_of(decision)
        ],
        "history": decision_history(decision, role_sight(request.user)),
        "other_labels": [label for label in model.labels if label != decision.final_outcome],
        "may_download": selectors.may_read_attachment(request.user),
    }


@require_POST
@role_required(r.SENIOR_REVIEWER)
def decide(request: HttpRequest, appeal_id: int) -> HttpResponse:
    appeal = _appeal(request, appeal_id)
    data = {key: request.POST.get(key, "") for key in ("result", "outcome", "reasons")}
    try:
        services.appeal_resolve(
            appeal_id=appeal.pk,
            senior=request.user,
            result=data["result"],
            outcome=data["outcome"] if data["result"] == Appeal.Status.OVERTURNED else None,
            reasons=data["reasons"],
        )
    except ApplicationError as exc:
        if exc.code == "invalid":
            return appeal_detail(request, appeal.pk, errors=exc.fields, status=400)
        context = {
            "message": exc.message,
            "what": "decision on the appeal",
            "text": data["reasons"],
            "typed": [("Result", data["result"]), ("Outcome", data["outcome"])],
            "lease_lost": exc.code == "lease_lost",
        }
        return render(request, "reviews/not_saved.html", context, status=exc.status)
    done = f"Appeal {appeal.pk} decided: {data['result']}. The person reads your reasons."
    messages.success(request, done)
    return redirect("appeals:detail", appeal_id=appeal.pk)


@role_required(*READERS)
def attachment(request: HttpRequest, appeal_id: int) -> HttpResponse:
    """The appeal's document, as a download only: never rendered by the browser."""
    appeal = _appeal(request, appeal_id)
    if not appeal.attachment_path or not selectors.may_read_attachment(request.user):
        raise Http404("No attachment.")
    try:
        handle = attachments.path_of(appeal.attachment_path).open("rb")
    except FileNotFoundError:
        raise Http404("The attachment's file is missing.") from None
    _viewed(request, appeal, "appeal.attachment_viewed", sha256=appeal.attachment_sha256)
    extension = appeal.attachment_path.rsplit(".", 1)[-1]
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=f"appeal-{appeal.pk}-attachment.{extension}",
        content_type="application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response
