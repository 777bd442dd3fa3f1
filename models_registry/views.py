from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core import roles as r
from core.errors import ApplicationError
from core.permissions import role_required
from models_registry import selectors, services
from models_registry.forms import (
    WHAT_IF_DEFAULT,
    WHAT_IF_WINDOWS,
    PolicyForm,
    ServiceGrantForm,
    VersionUploadForm,
)
from models_registry.models import MLModel

STAFF = r.STAFF_ROLES


@role_required(*STAFF)
def model_list(request: HttpRequest) -> HttpResponse:
    models = (
        selectors.models_visible_to(request.user)
        .select_related("owner")
        .prefetch_related("versions")
    )
    return render(request, "models_registry/list.html", {"models": models})


@role_required(*STAFF)
def model_card(request: HttpRequest, name: str) -> HttpResponse:
    model = get_object_or_404(selectors.models_visible_to(request.user), name=name)
    context = selectors.card_context(model)
    is_owner = model.owner_id == request.user.pk and r.has_role(request.user, r.MODEL_OWNER)
    context["is_owner"] = is_owner
    # Auditors read the learning page of every model (labels, deliveries, retraining).
    context["can_see_learning"] = r.has_role(request.user, r.AUDITOR)
    context["can_see_activity"] = is_owner or r.has_role(request.user, r.AUDITOR)
    context["can_what_if"] = is_owner or r.has_role(request.user, r.AUDITOR)
    if is_owner:
        context["services"] = selectors.model_services(model)
        context["grant_form"] = ServiceGrantForm()
    return render(request, "models_registry/card.html", context)


def _owned(request: HttpRequest, name: str) -> MLModel:
    model = get_object_or_404(selectors.models_visible_to(request.user), name=name)
    if model.owner_id != request.user.pk:
        raise PermissionDenied(f"Only the owner of {model.name} may change it.")
    return model


def _add_errors(form: forms.Form, exc: ApplicationError) -> None:
    """The service's refusal on the form: each field beside its input (`high_stakes.0.when`
    on `high_stakes`), anything else above the form."""
    for field, errors in exc.fields.items():
        name = field.split(".")[0]
        form.add_error(name if name in form.fields else None, errors)
    if not exc.fields:
        form.add_error(None, exc.message)


@role_required(r.MODEL_OWNER)
def policy_edit(request: HttpRequest, name: str) -> HttpResponse:
    model = _owned(request, name)
    policy = selectors.current_policy(model)
    context = {"model": model, "policy": policy, "may_save": True}
    context.update(what_if_windows=WHAT_IF_WINDOWS, last=WHAT_IF_DEFAULT)
    if request.method != "POST":
        context["form"] = PolicyForm.for_policy(policy)
        return render(request, "models_registry/policy.html", context)
    form = context["form"] = PolicyForm(request.POST)
    if form.is_valid():
        try:
            services.policy_update(
                model=model,
                changes=form.changes(),
                note=form.cleaned_data["note"],
                actor=request.user,
            )
        except ApplicationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, "Routing policy saved as a new version.")
            return redirect("models_registry:card", name=model.name)
    return render(request, "models_registry/policy.html", context, status=400)


@role_required(r.MODEL_OWNER)
def version_new(request: HttpRequest, name: str) -> HttpResponse:
    """Upload a version through the page: what POST /api/v1/models/{name}/versions/ takes."""
    model = _owned(request, name)
    form = VersionUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            version = services.version_upload(model=model, actor=request.user, **form.upload())
        except ApplicationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(
                request,
                f"Version {version.number} registered as a candidate: promote it below when "
                "it passes the promotion gate.",
            )
            return redirect("models_registry:card", name=model.name)
    status = 400 if form.errors else 200
    return render(
        request, "models_registry/version_new.html", {"model": model, "form": form}, status=status
    )


@require_POST
@role_required(r.MODEL_OWNER)
def service_grant(request: HttpRequest, name: str) -> HttpResponse:
    model = _owned(request, name)
    form = ServiceGrantForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Name the service to grant.")
        return redirect("models_registry:card", name=model.name)
    username = form.cleaned_data["service"].strip()
    service = User.objects.filter(username=username).first()
    if service is None:
        messages.error(request, f"There is no service named {username!r}.")
        return redirect("models_registry:card", name=model.name)
    try:
        changed = services.model_services_grant(model=model, service=service, actor=request.user)
    except ApplicationError as exc:
        problems = [message for messages_ in exc.fields.values() for message in messages_]
        messages.error(request, " ".join(problems) or exc.message)
    else:
        done = "may now use" if changed else "could already use"
        messages.success(request, f"{service.username} {done} {model.name}.")
    return redirect("models_registry:card", name=model.name)


@require_POST
@role_required(r.MODEL_OWNER)
def service_revoke(request: HttpRequest, name: str, username: str) -> HttpResponse:
    model = _owned(request, name)
    service = get_object_or_404(model.services, username=username)
    services.model_services_revoke(model=model, service=service, actor=request.user)
    messages.success(
        request, f"{service.username} no longer sends or reads {model.name}'s decisions."
    )
    return redirect("models_registry:card", name=model.name)
