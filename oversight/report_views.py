"""Pages of the group reports under /oversight/: the models one may report on, and one model's
report (charts with the tables behind them, CSV/JSON downloads, drift, alerts and the breaker).
Every page works without JavaScript."""

from __future__ import annotations

import json
from urllib.parse import quote

from django.conf import settings
from django.contrib import messages
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from audit.models import Alert
from core.errors import ApplicationError
from core.permissions import role_required
from models_registry.models import MLModel
from models_registry.selectors import current_policy
from oversight import demo_reviews, monitoring
from oversight import report_presentation as present
from oversight.drift import model_drift
from oversight.models import BreakerTrip
from oversight.report_filters import SAMPLES, ReportFilters, report_filters
from oversight.reports import override_report
from oversight.selectors import (
    REPORT_ROLES,
    may_reset_breaker,
    reportable_models,
    sees_small_groups,
)
from reviews.models import REASONS


def _model_or_404(request: HttpRequest, name: str) -> MLModel:
    model = reportable_models(request.user).filter(name=name).first()
    if model is None:
        raise Http404("No such model, or none that you may report on.")
    return model


def _params(request: HttpRequest, model: MLModel):
    params = request.GET.copy()
    params["model"] = model.name
    return params


@role_required(*REPORT_ROLES)
def reports_index(request: HttpRequest) -> HttpResponse:
    models = list(reportable_models(request.user).order_by("name"))
    scopes = [monitoring.scope_of(m) for m in models]
    open_alerts = Alert.objects.filter(scope__in=scopes, resolved_at=None)
    counts: dict[str, int] = {}
    for scope in open_alerts.values_list("scope", flat=True):
        counts[scope] = counts.get(scope, 0) + 1
    tripped = set(
        BreakerTrip.objects.filter(model__in=models, reset_at=None).values_list(
            "model_id", flat=True
        )
    )
    rows = [
        {"model": m, "alerts": counts.get(monitoring.scope_of(m), 0), "tripped": m.pk in tripped}
        for m in models
    ]
    return render(request, "oversight/reports.html", {"rows": rows})


@role_required(*REPORT_ROLES)
def model_report(request: HttpRequest, name: str) -> HttpResponse:
    model = _model_or_404(request, name)
    other = request.GET.get("model", "")
    if other and other != model.name:
        # The form's model menu: the other model's report, with the filters that carry over.
        carried = request.GET.copy()
        for key in ("model", "version", "reference"):
            carried.pop(key, None)
        target = _model_or_404(request, other)
        return redirect(f"{reverse('oversight:report', args=[target.name])}?{carried.urlencode()}")
    full = sees_small_groups(request.user)
    context = {
        "model": model,
        "models": reportable_models(request.user).order_by("name"),
        "versions": model.versions.order_by("-number"),
        "samples": SAMPLES,
        "reasons": REASONS,
        "full": full,
        "simulated": demo_reviews.simulated_note(model),
        **_breaker_context(request, model),
    }
    try:
        filters = report_filters(_params(request, model), request.user)
    except ApplicationError as exc:
        context.update(errors=exc.fields or {"filters": [exc.message]}, filters=None)
        return render(request, "oversight/report.html", context, status=400)
    report = override_report(filters, full=full)
    # Drift reads every recent decision's features (seconds at a million): only when asked.
    show_drift = request.GET.get("drift", "") in ("1", "true", "on")
    drifts = model_drift(model, version=filters.version) if show_drift else None
    context.update(_report_context(filters, report, drifts or [], full), show_drift=show_drift)
    return render(request, "oversight/report.html", context)


def _report_context(filters: ReportFilters, report: dict, drifts: list, full: bool) -> dict:
    min_cell = report["min_cell"]
    tables = [
        {
            **table,
            "override_chart": present.override_chart(table, i, min_cell),
            "selection_chart": present.selection_chart(table, i),
            "appeals_chart": present.appeals_chart(table, i, report["appeals"]["available"]),
        }
        for i, table in enumerate(report["tables"])
    ]
    trends = [
        {**trend, "chart": present.trend_chart(trend, i)} for i, trend in enumerate(report["trend"])
    ]
    drift_views = [
        {
            **drift,
            "chart": present.drift_chart(
                drift, i, settings.DRIFT_PSI_ALERT, settings.DRIFT_PSI_TRIP
            )
            if drift["features"]
            else None,
        }
        for i, drift in enumerate(drifts)
    ]
    query = "&".join(f"{k}={v}" for k, v in _quoted(filters.query()))
    return {
        "filters": filters,
        "report": report,
        "tables": tables,
        "trends": trends,
        "drifts": drift_views,
        "query": query,
        "alerts": _alerts(filters.model, full),
    }


def _quoted(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(quote(k), quote(v, safe="")) for k, v in pairs]


def _alerts(model: MLModel, full: bool) -> list[dict]:
    """Open alerts of the model. Their messages (which name groups and rates) for auditors;
    others see that there are alerts, and of which kind."""
    alerts = Alert.objects.filter(scope=monitoring.scope_of(model), resolved_at=None)
    return [
        {"kind": a.kind, "created_at": a.created_at, "state": a.state,
         "message": a.message if full else None}
        for a in alerts.order_by("-created_at")
    ]  # fmt: skip


def _breaker_context(request: HttpRequest, model: MLModel) -> dict:
    policy = current_policy(model)
    trips = list(BreakerTrip.objects.filter(model=model).select_related("reset_by")[:10])
    return {
        "policy": policy,
        "trip": next((t for t in trips if t.reset_at is None), None),
        "trips": trips,
        "may_reset": may_reset_breaker(request.user, model),
    }


@role_required(*REPORT_ROLES)
def report_download(request: HttpRequest, name: str, table: str, fmt: str) -> HttpResponse:
    """One table of the report (the filters of the query string) as CSV or JSON."""
    model = _model_or_404(request, name)
    if table not in present.TABLES or fmt not in ("csv", "json"):
        raise Http404("No such table.")
    try:
        filters = report_filters(_params(request, model), request.user)
    except ApplicationError as exc:
        return HttpResponse(exc.message, status=exc.status, content_type="text/plain")
    if table == "drift":
        rows = present.drift_rows(model_drift(model, version=filters.version))
        notes: list[str] = []
    else:
        report = override_report(filters, full=sees_small_groups(request.user))
        rows, notes = present.ROWS[table](report), report["notes"]
    filename = f"{model.name}-{table}.{fmt}"
    if fmt == "csv":
        response = HttpResponse(present.as_csv(rows), content_type="text/csv; charset=utf-8")
    else:
        body = {"model": model.name, "table": table, "filters": filters.as_dict(),
                "notes": notes, "rows": rows}  # fmt: skip
        response = HttpResponse(
            json.dumps(body, cls=DjangoJSONEncoder, indent=1), content_type="application/json"
        )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_POST
@role_required(*REPORT_ROLES)
def evaluate(request: HttpRequest, name: str) -> HttpResponse:
    model = _model_or_404(request, name)
    result = monitoring.model_evaluate(model=model, actor=request.user)
    if result["findings"]:
        kinds = ", ".join(sorted({f["kind"] for f in result["findings"]}))
        raised = ", ".join(result["raised"]) or "none new (the alerts are open already)"
        messages.warning(request, f"Findings: {kinds}. Alerts raised now: {raised}.")
    else:
        messages.success(request, "Evaluated: no alert condition holds.")
    if result["breaker_tripped"]:
        messages.error(
            request, "The review-all breaker tripped: every new decision goes to people."
        )
    return redirect("oversight:report", name=model.name)


@require_POST
@role_required(*REPORT_ROLES)
def breaker_reset(request: HttpRequest, name: str) -> HttpResponse:
    model = _model_or_404(request, name)
    try:
        monitoring.breaker_reset(model=model, actor=request.user, note=request.POST.get("note", ""))
    except ApplicationError as exc:
        note_errors = exc.fields.get("note")
        messages.error(request, note_errors[0] if note_errors else exc.message)
    else:
        messages.success(request, "Breaker reset: the routing policy is back to what it was.")
    return redirect("oversight:report", name=model.name)
