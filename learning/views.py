"""The owner's learning page (/models/{name}/learning/) and the gated promote button."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core import roles as r
from core.errors import ApplicationError
from core.permissions import role_required
from learning import selectors, services, svg
from learning.forms import PromoteForm, WebhookForm
from learning.metrics import RATES
from learning.models import Evaluation
from models_registry.models import MLModel
from models_registry.selectors import models_visible_to
from outbox.services import message_resend

RATE_NAMES = {
    "selection_rate": "Selection rate",
    "false_positive_rate": "False positive rate",
    "false_negative_rate": "False negative rate",
}


def _model(request: HttpRequest, name: str, *, owner_only: bool) -> MLModel:
    model = get_object_or_404(models_visible_to(request.user), name=name)
    if selectors.is_owner(request.user, model):
        return model
    if not owner_only and r.has_role(request.user, r.AUDITOR):
        return model
    raise PermissionDenied(f"Only the owner of {model.name} (and auditors, to read) may.")


@role_required(r.MODEL_OWNER, r.AUDITOR)
def learning_page(request: HttpRequest, name: str) -> HttpResponse:
    model = _model(request, name, owner_only=False)
    return render(request, "learning/page.html", _context(request, model))


def _context(request: HttpRequest, model: MLModel, **extra) -> dict:
    days = selectors.labels_by_day(model)
    sources = ["review", "adjudication", "appeal"]
    labels_chart = svg.line_chart(
        "labels",
        "Human labels per day, by source (last 30 days)",
        [d["day"].strftime("%m-%d") for d in days],
        {s: [d[s] for d in days] for s in sources},
    )
    outbox = selectors.outbox_state(model)
    outbox_chart = svg.bar_chart(
        "outbox",
        "Deliveries by state",
        [row["kind"] for row in outbox],
        {s: [row[s] for row in outbox] for s in ("pending", "delivered", "dead")},
        percent=False,
    )
    evaluation = selectors.latest_evaluation(model)
    shadow = selectors.shadow_candidate(model)
    return {
        "model": model,
        "is_owner": selectors.is_owner(request.user, model),
        "totals": selectors.label_totals(model),
        "days": [d for d in days if any(d[s] for s in sources)],
        "sources": sources,
        "labels_chart": labels_chart,
        "outbox": outbox,
        "outbox_chart": outbox_chart,
        "dead": selectors.dead_messages(model),
        "webhook": selectors.webhook_of(model),
        "deliveries": selectors.webhook_deliveries(model),
        "webhook_form": extra.pop("webhook_form", None) or WebhookForm(),
        "runs": selectors.retraining_runs(model),
        "evaluation": evaluation,
        "comparison": _comparison(evaluation) if evaluation else None,
        "shadow": selectors.shadow_summary(shadow) if shadow else None,
        **extra,
    }


def _comparison(evaluation: Evaluation) -> dict:
    report = evaluation.report
    new, old = report.get("candidate") or {}, report.get("champion") or {}
    overall_rows = [
        {
            "metric": m,
            "candidate": new.get("overall", {}).get(m),
            "champion": (old or {}).get("overall", {}).get(m),
        }
        for m in ("accuracy", "roc_auc")
    ]
    overall_chart = svg.bar_chart(
        "overall",
        f"Overall on the holdout: version {evaluation.candidate.number} against the champion",
        ["accuracy", "ROC AUC"],
        {
            f"candidate v{evaluation.candidate.number}": [r["candidate"] for r in overall_rows],
            "champion": [r["champion"] for r in overall_rows],
        },
    )
    return {
        "overall_rows": overall_rows,
        "overall_chart": overall_chart,
        "attributes": [
            _attribute(attribute, groups, (old or {}).get("by_group", {}).get(attribute, {}))
            for attribute, groups in new.get("by_group", {}).items()
        ],
        "checks": report.get("checks", []),
    }


def _attribute(attribute: str, groups: dict, old_groups: dict) -> dict:
    names = sorted(groups)
    charts = [
        svg.bar_chart(
            f"{attribute}-{metric}",
            f"{RATE_NAMES[metric]} by {attribute}: candidate against champion",
            names,
            {
                "candidate": [groups[g][metric] for g in names],
                "champion": [old_groups.get(g, {}).get(metric) for g in names],
            },
        )
        for metric in RATES
    ]
    rows = [
        {
            "group": g,
            "new": groups[g],
            "old": old_groups.get(g, {}),
            "too_small": groups[g].get("too_small", []),
        }
        for g in names
    ]
    return {"name": attribute, "charts": charts, "rows": rows}


@require_POST
@role_required(r.MODEL_OWNER)
def retrain(request: HttpRequest, name: str) -> HttpResponse:
    model = _model(request, name, owner_only=True)
    try:
        run = services.retraining_request(model=model, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Retraining run {run.pk} is queued.")
    return redirect("learning:page", name=model.name)


@require_POST
@role_required(r.MODEL_OWNER)
def webhook(request: HttpRequest, name: str) -> HttpResponse:
    model = _model(request, name, owner_only=True)
    if request.POST.get("remove"):
        try:
            services.webhook_remove(model=model, actor=request.user)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "The webhook is removed.")
        return redirect("learning:page", name=model.name)
    form = WebhookForm(request.POST)
    if form.is_valid():
        try:
            services.webhook_set(model=model, actor=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            for field, errors in exc.fields.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, "The webhook is set. Its secret will not be shown again.")
            return redirect("learning:page", name=model.name)
    return render(
        request, "learning/page.html", _context(request, model, webhook_form=form), status=400
    )


@require_POST
@role_required(r.MODEL_OWNER)
def delivery_resend(request: HttpRequest, name: str, message_id: int) -> HttpResponse:
    model = _model(request, name, owner_only=True)
    message = selectors.message_of_model(model, message_id)
    if message is None:
        raise PermissionDenied("No such delivery of this model.")
    try:
        message_resend(message_id=message.pk, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Delivery {message.key} will be sent again.")
    return redirect("learning:page", name=model.name)


@require_POST
@role_required(r.MODEL_OWNER)
def version_promote(request: HttpRequest, name: str, number: int) -> HttpResponse:
    model = _model(request, name, owner_only=True)
    version = get_object_or_404(model.versions, number=number)
    form = PromoteForm(request.POST)
    justification = form.data.get("justification", "")
    try:
        services.version_promote_gated(
            version=version, actor=request.user, justification=justification
        )
    except ApplicationError as exc:
        if exc.code != "promotion_gate":
            messages.error(request, exc.message)
            return redirect("models_registry:card", name=model.name)
        context = {
            "model": model,
            "version": version,
            "form": form,
            "checks": exc.extra.get("failed_checks", []),
            "message": exc.message,
        }
        return render(request, "learning/gate_refused.html", context, status=409)
    messages.success(request, f"Version {number} is now the champion.")
    return redirect("models_registry:card", name=model.name)
