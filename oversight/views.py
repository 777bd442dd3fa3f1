"""Auditors' pages of the oversight app: a decision's audit events with their proofs, and
decision-log exports."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from audit.services import viewed
from core.errors import ApplicationError
from core.permissions import role_required
from core.roles import AUDITOR
from oversight import selectors, services
from oversight.forms import ExportForm, describe_filters
from oversight.timeline import timeline
from reviews.presentation import KIND_WORDS
from reviews.selectors import (
    decision_log,
    decision_seen,
    decisions_seen,
    decisions_visible_to,
    sights_of,
)

FOUND_SHOWN = 50


@role_required(AUDITOR)
def decision_events(request: HttpRequest, decision_id: int) -> HttpResponse:
    decision = get_object_or_404(decisions_visible_to(request.user), pk=decision_id)
    sight = sights_of(request.user, [decision.pk])[decision.pk]
    if not sight.log:  # an auditor who reviews too, while the decision awaits their blind review
        raise PermissionDenied("This decision awaits your blind review.")
    viewed(
        actor=request.user, action="decision.viewed", object_type="decision", object_id=decision.pk
    )
    seen = decision_seen(decision, sight)
    proof = decision_log(decision, sight)
    tasks = [{**task, "kind_display": KIND_WORDS.get(task["kind"], task["kind"])}
             for task in seen.get("tasks", [])]  # fmt: skip
    context = {"decision": seen, "proof": proof, "timeline": timeline(proof), "tasks": tasks}
    context["status_text"] = seen.get("status", "").replace("_", " ")
    return render(request, "oversight/decision.html", context)


@role_required(AUDITOR)
def decision_find(request: HttpRequest) -> HttpResponse:
    """A decision by its id, its external id or its subject reference: straight to it when one
    matches, a list when several do (an external id per model, a person's several decisions)."""
    query = request.GET.get("q", "").strip()
    context: dict = {"q": query, "found": [], "error": ""}
    if not query:
        context["error"] = "Type a decision id, an external id or a subject reference."
        return render(request, "oversight/find.html", context, status=400)
    if len(query) > 200:
        context["error"] = "That is longer than any id or reference (200 characters at most)."
        return render(request, "oversight/find.html", context, status=400)
    match = Q(external_id=query) | Q(subject_ref=query)
    if query.isascii() and query.isdigit() and len(query) < 18:
        match |= Q(pk=int(query))
    found = list(
        decisions_visible_to(request.user)
        .filter(match)
        .select_related("model")
        .order_by("-received_at", "-id")[: FOUND_SHOWN + 1]
    )
    if len(found) == 1:
        return redirect("oversight:decision", decision_id=found[0].pk)
    context["more"] = len(found) > FOUND_SHOWN
    context["found"] = decisions_seen(request.user, found[:FOUND_SHOWN], tasks=False)
    if not found:
        context["error"] = f"No decision has the id, external id or subject reference {query!r}."
    return render(request, "oversight/find.html", context, status=200 if found else 404)


@role_required(AUDITOR)
def export_list(request: HttpRequest) -> HttpResponse:
    form = ExportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            export = services.export_request(actor=request.user, **form.request_data())
        except ApplicationError as exc:
            _add_errors(form, exc)
        else:
            _say_what_happened(request, export.pk)
            return redirect("oversight:exports")
    items = selectors.exports_visible_to(request.user).select_related("requested_by")[:50]
    pending = any(e.status in ("queued", "running") for e in items)
    rows = [{"export": e, "filters": describe_filters(e.filters)} for e in items]
    return render(
        request,
        "oversight/exports.html",
        {"form": form, "exports": rows, "pending": pending},
        status=400 if form.errors else 200,
    )


def _say_what_happened(request: HttpRequest, export_id: int) -> None:
    """What became of the export by the time the page comes back: written already (no broker:
    it ran in-process), failed, or waiting for a worker."""
    export = selectors.exports_visible_to(request.user).get(pk=export_id)
    if export.status == "done":
        rows = f"{export.rows:,} row{'s' if export.rows != 1 else ''}"
        messages.success(request, f"Export {export.pk} is ready: {rows}. Download it below.")
    elif export.status == "failed":
        messages.error(request, f"Export {export.pk} failed: {export.error[:300]}")
    else:
        messages.info(
            request,
            f"Export {export.pk} is {export.status}: it is written by a worker (it waits for "
            "a worker if none is reachable). This page refreshes until it is done.",
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
