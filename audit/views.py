from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from audit import keys, selectors, services
from audit.api import exports_visible_to
from audit.forms import EventFilterForm, ExportForm
from audit.models import Alert, AuditEvent, Checkpoint
from core.errors import ApplicationError
from core.permissions import role_required
from core.roles import AUDITOR


@role_required(AUDITOR)
def home(request: HttpRequest) -> HttpResponse:
    context = selectors.chain_status()
    context["recent"] = AuditEvent.objects.order_by("-seq")[:15]
    context["checkpoint"] = Checkpoint.objects.order_by("-tree_size").first()
    context["alerts"] = Alert.objects.filter(resolved_at=None)[:20]
    try:
        context["public_key"] = keys.public_key()
    except ApplicationError as exc:
        context["key_problem"] = exc.message
    return render(request, "audit/home.html", context)


@require_POST
@role_required(AUDITOR)
def verify_now(request: HttpRequest) -> HttpResponse:
    services.verification_request(actor=request.user)
    messages.info(request, "Verification started; the result appears here when it is done.")
    return redirect("audit:home")


@role_required(AUDITOR)
def events(request: HttpRequest) -> HttpResponse:
    form = EventFilterForm(request.GET or None)
    qs = AuditEvent.objects.order_by("-seq")
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


@role_required(AUDITOR)
def decision_events(request: HttpRequest, decision_id: int) -> HttpResponse:
    from reviews.models import Decision

    decision = get_object_or_404(Decision.objects.select_related("model"), pk=decision_id)
    services.viewed(
        actor=request.user, action="decision.viewed", object_type="decision", object_id=decision.pk
    )
    proof = selectors.decision_proof(decision.pk)
    return render(request, "audit/decision.html", {"decision": decision, "proof": proof})


@role_required(AUDITOR)
def export_list(request: HttpRequest) -> HttpResponse:
    form = ExportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            export = services.export_request(actor=request.user, **form.request_data())
        except ApplicationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, f"Export {export.pk} queued.")
            return redirect("audit:exports")
    items = exports_visible_to(request.user).select_related("requested_by")[:50]
    pending = any(e.status in ("queued", "running") for e in items)
    return render(
        request,
        "audit/exports.html",
        {"form": form, "exports": items, "pending": pending},
        status=400 if form.errors else 200,
    )


def _add_errors(form: ExportForm, exc: ApplicationError) -> None:
    """The service's refusal on the form: each named field (`filters.groups` is the form's
    `groups`) beside its input, anything else above the form."""
    for field, errors in exc.fields.items():
        name = field.split(".")[-1]
        form.add_error(name if name in form.fields else None, errors)
    if not exc.fields:
        form.add_error(None, exc.message)


@role_required(AUDITOR)
def export_download(request: HttpRequest, export_id: int) -> HttpResponse:
    export = get_object_or_404(exports_visible_to(request.user), pk=export_id)
    try:
        path = services.export_download(export=export, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("audit:exports")
    return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)
