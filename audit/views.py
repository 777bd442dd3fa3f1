from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from audit import keys, selectors, services
from audit.forms import EventFilterForm
from audit.models import Alert, AuditEvent, Checkpoint
from core.errors import ApplicationError
from core.permissions import role_required
from core.roles import AUDITOR, REVIEWER, has_role

# The raw log holds every event's payload: the model's answers to the decisions awaiting blind
# review and which tasks are known-answer copies among them. Not for an auditor who also reviews
# (the export's audit bundle is refused to them for the same reason).
REVIEWS_TOO = (
    "The raw audit log shows the model's answers to decisions awaiting blind review and which "
    "tasks are known-answer checks: it is not for an auditor who also reviews. Ask an auditor "
    "who does not review, or use a separate auditor account."
)


def _reviews_too(request: HttpRequest) -> bool:
    return has_role(request.user, REVIEWER)


@role_required(AUDITOR)
def home(request: HttpRequest) -> HttpResponse:
    context = selectors.chain_status()
    if _reviews_too(request):
        context["recent"], context["reviews_too"] = [], REVIEWS_TOO
    else:
        context["recent"] = AuditEvent.objects.order_by("-id")[:15]  # staged ones too
    context["checkpoint"] = Checkpoint.objects.order_by("-tree_size").first()
    size = context["checkpoint"].tree_size if context["checkpoint"] else 0
    context["after_checkpoint"] = max(0, (context.get("count") or 0) - size)
    context["checkpoint_seconds"] = settings.CELERY_BEAT_SCHEDULE["sign-audit-checkpoint"][
        "schedule"
    ]
    context["embedded_jobs"] = settings.EMBEDDED_JOBS
    context["alerts"] = Alert.objects.filter(resolved_at=None).select_related("acknowledged_by")[
        :20
    ]
    try:
        context["public_key"] = keys.public_key()
    except ApplicationError as exc:
        context["key_problem"] = exc.message
    return render(request, "audit/home.html", context)


@require_POST
@role_required(AUDITOR)
def verify_now(request: HttpRequest) -> HttpResponse:
    services.verification_request(actor=request.user)
    messages.info(
        request,
        "Verification requested: the result appears here when it is done (it waits for a "
        "worker if none is reachable).",
    )
    return redirect("audit:home")


@role_required(AUDITOR)
def events(request: HttpRequest) -> HttpResponse:
    if _reviews_too(request):
        raise PermissionDenied(REVIEWS_TOO)
    filters = request.GET.copy()
    filters.pop("page", None)
    form = EventFilterForm(filters or None)
    if filters and not form.is_valid():
        # One bad filter is not a reason to show everything: nothing until it is fixed.
        context = {"form": form, "page": None, "query": filters.urlencode()}
        return render(request, "audit/events.html", context, status=400)
    qs = _filtered(AuditEvent.objects.order_by("-id"), form.cleaned_data if filters else {})
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    return render(
        request, "audit/events.html", {"form": form, "page": page, "query": filters.urlencode()}
    )


def _filtered(qs, data: dict):
    if data.get("actor"):
        qs = qs.filter(actor__icontains=data["actor"])
    if data.get("action"):
        qs = qs.filter(action__startswith=data["action"])
    if data.get("object_type"):
        qs = qs.filter(object_type=data["object_type"])
    if data.get("object_id"):
        qs = qs.filter(object_id=data["object_id"])
    # By the time it was sealed into the log (indexed; within moments of the change).
    if data.get("since"):
        qs = qs.filter(time__gte=data["since"])
    if data.get("until"):
        qs = qs.filter(time__lt=data["until"])
    return qs


@require_POST
@role_required(AUDITOR)
def checkpoint_now(request: HttpRequest) -> HttpResponse:
    """Sign a checkpoint now, rather than at the periodic job's next run."""
    try:
        checkpoint = services.checkpoint_request(actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            f"Signed a checkpoint over {checkpoint.tree_size} events."
            if checkpoint
            else "Nothing new to sign: the latest checkpoint covers the whole log.",
        )
    return redirect("audit:home")


@require_POST
@role_required(AUDITOR)
def alert_acknowledge(request: HttpRequest, alert_id: int) -> HttpResponse:
    return _alert_action(request, services.alert_acknowledge, alert_id, "acknowledged")


@require_POST
@role_required(AUDITOR)
def alert_resolve(request: HttpRequest, alert_id: int) -> HttpResponse:
    return _alert_action(request, services.alert_resolve, alert_id, "resolved")


def _alert_action(request: HttpRequest, action, alert_id: int, done: str) -> HttpResponse:
    try:
        action(alert_id=alert_id, actor=request.user, note=request.POST.get("note", ""))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Alert {alert_id} {done}.")
    return redirect("audit:home")
