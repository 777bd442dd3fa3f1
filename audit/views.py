from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from audit import keys, selectors, services
from audit.forms import EventFilterForm
from audit.models import Alert, AuditEvent, Checkpoint
from core.errors import ApplicationError
from core.permissions import role_required
from core.roles import AUDITOR


@role_required(AUDITOR)
def home(request: HttpRequest) -> HttpResponse:
    context = selectors.chain_status()
    context["recent"] = AuditEvent.objects.order_by("-id")[:15]  # staged ones too
    context["checkpoint"] = Checkpoint.objects.order_by("-tree_size").first()
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
    form = EventFilterForm(request.GET or None)
    qs = AuditEvent.objects.order_by("-id")
    if form.is_valid():
        data = form.cleaned_data
        if data["actor"]:
            qs = qs.filter(actor__icontains=data["actor"])
        if data["action"]:
            qs = qs.filter(action__startswith=data["action"])
        if data["object_type"]:
            qs = qs.filter(object_type=data["object_type"])
        if data["object_id"]:
            qs = qs.filter(object_id=data["object_id"])
        if data["since"]:
            qs = qs.filter(time__gte=data["since"])
        if data["until"]:
            qs = qs.filter(time__lt=data["until"])
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request, "audit/events.html", {"form": form, "page": page, "query": query.urlencode()}
    )


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
