from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from core import roles as r
from core.errors import ApplicationError
from core.permissions import role_required
from models_registry import selectors, services
from models_registry.forms import PolicyForm
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
    context["is_owner"] = model.owner_id == request.user.pk and r.has_role(
        request.user, r.MODEL_OWNER
    )
    # Auditors read the learning page of every model (labels, deliveries, retraining).
    context["can_see_learning"] = r.has_role(request.user, r.AUDITOR)
    return render(request, "models_registry/card.html", context)


def _owned(request: HttpRequest, name: str) -> MLModel:
    model = get_object_or_404(selectors.models_visible_to(request.user), name=name)
    if model.owner_id != request.user.pk:
        raise PermissionDenied(f"Only the owner of {model.name} may change it.")
    return model


@role_required(r.MODEL_OWNER)
def policy_edit(request: HttpRequest, name: str) -> HttpResponse:
    model = _owned(request, name)
    policy = selectors.current_policy(model)
    if request.method != "POST":
        return render(
            request,
            "models_registry/policy.html",
            {"model": model, "policy": policy, "form": PolicyForm.for_policy(policy)},
        )
    form = PolicyForm(request.POST)
    if form.is_valid():
        # An optional field left empty keeps its current value.
        changes = {k: v for k, v in form.cleaned_data.items() if v is not None}
        note = changes.pop("note")
        try:
            services.policy_update(model=model, changes=changes, note=note, actor=request.user)
        except ApplicationError as exc:
            for field, errors in exc.fields.items():
                form.add_error(
                    field.split(".")[0] if field.split(".")[0] in form.fields else None, errors
                )
        else:
            messages.success(request, "Routing policy saved as a new version.")
            return redirect("models_registry:card", name=model.name)
    return render(
        request,
        "models_registry/policy.html",
        {"model": model, "policy": policy, "form": form},
        status=400,
    )
