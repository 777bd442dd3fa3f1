"""Auditors' pages of the oversight app: a decision's audit events with their proofs, and
decision-log exports."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from audit.services import viewed
from core.errors import ApplicationError
from core.permissions import role_required
from core.roles import AUDITOR
from oversight import selectors, services
from oversight.forms import ExportForm
from reviews.selectors import decision_log, decision_seen, decisions_visible_to, sights_of


@role_required(AUDITOR)
def decision_events(request: HttpRequest, decision_id: int) -> HttpResponse:
    decision = get_object_or_404(decisions_visible_to(request.user), pk=decision_id)
    sight = sights_of(request.user, [decision.pk])[decision.pk]
    if not sight.log:  # an auditor who reviews too, while the decision awaits their blind review
        raise PermissionDenied("This decision awaits your blind review.")
    viewed(
        actor=request.user, action="decision.viewed", object_type="decision", object_id=decision.pk
    )
    context = {"decision": decision_seen(decision, sight), "proof": decision_log(decision, sight)}
    return render(request, "oversight/decision.html", context)


@role_required(AUDITOR)
def export_list(request: HttpRequest) -> HttpResponse:
    form = ExportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            export = services.export_request(actor=request.user, **form.request_data())
        except ApplicationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(
                request,
                f"Export {export.pk} requested: this page shows its progress (it waits for a "
                "worker if none is reachable).",
            )
            return redirect("oversight:exports")
    items = selectors.exports_visible_to(request.user).select_related("requested_by")[:50]
    pending = any(e.status in ("queued", "running") for e in items)
    return render(
        request,
        "oversight/exports.html",
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
    export = get_object_or_404(selectors.exports_visible_to(request.user), pk=export_id)
    try:
        path = services.export_download(export=export, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("oversight:exports")
    return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)
