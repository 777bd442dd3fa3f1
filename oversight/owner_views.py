"""Model owners' pages that need the decisions (so they live here, above reviews): a model's
activity, and the routing policy's what-if (a draft policy tried on the latest decisions).
Auditors read both for every model, the what-if by protected group too."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from core import roles as r
from core.permissions import role_required
from models_registry.forms import WHAT_IF_DEFAULT, WHAT_IF_WINDOWS, PolicyForm
from models_registry.models import MLModel, RoutingPolicy
from models_registry.selectors import current_policy, models_visible_to
from models_registry.services import policy_errors
from oversight.activity import DEFAULT_DAYS, MAX_DAYS, model_activity
from reviews.whatif import policy_what_if

READERS = (r.MODEL_OWNER, r.AUDITOR)


def _model(request: HttpRequest, name: str) -> MLModel:
    """A model the viewer owns, or any model for an auditor; 404 otherwise."""
    model = models_visible_to(request.user).filter(name=name).first()
    if model is None:
        raise Http404("No such model.")
    owner = model.owner_id == request.user.pk and r.has_role(request.user, r.MODEL_OWNER)
    if not owner and not r.has_role(request.user, r.AUDITOR):
        raise Http404("No such model that you own.")
    return model


@role_required(*READERS)
def model_activity_page(request: HttpRequest, name: str) -> HttpResponse:
    model = _model(request, name)
    text = request.GET.get("days") or str(DEFAULT_DAYS)
    errors = {}
    if not (text.isascii() and text.isdigit() and 1 <= int(text[:4]) <= MAX_DAYS):
        errors["days"] = [f"must be a whole number of days from 1 to {MAX_DAYS}"]
        text = str(DEFAULT_DAYS)
    context = {"model": model, "errors": errors, "days_text": request.GET.get("days", text)}
    context.update(model_activity(model, days=int(text)))
    return render(request, "oversight/activity.html", context, status=400 if errors else 200)


@role_required(*READERS)
def what_if(request: HttpRequest, name: str) -> HttpResponse:
    """GET: the policy form, as it is now; POST: the draft tried on the latest decisions."""
    model = _model(request, name)
    policy = current_policy(model)
    may_save = model.owner_id == request.user.pk and r.has_role(request.user, r.MODEL_OWNER)
    context = {
        "model": model,
        "policy": policy,
        "may_save": may_save,
        "what_if_windows": WHAT_IF_WINDOWS,
        "last": WHAT_IF_DEFAULT,
    }
    if request.method != "POST":
        context["form"] = PolicyForm.for_policy(policy)
        return render(request, "models_registry/policy.html", context)
    form = context["form"] = PolicyForm(request.POST)
    context["last"] = _last(request.POST.get("last"))
    draft = _draft(form, model, policy)
    if draft is None:
        return render(request, "models_registry/policy.html", context, status=400)
    context["whatif"] = policy_what_if(
        model=model, draft=draft, last=context["last"], by_group=r.has_role(request.user, r.AUDITOR)
    )
    return render(request, "models_registry/policy.html", context)


def _last(value: str | None) -> int:
    return int(value) if value and value.isdigit() and int(value) in WHAT_IF_WINDOWS else 500


def _draft(form: PolicyForm, model: MLModel, policy: RoutingPolicy) -> RoutingPolicy | None:
    """The draft as an unsaved policy, checked as saving it would be; None (errors on the
    form) when it is not a valid policy. The note is for saving: a preview needs none."""
    form.is_valid()
    if set(form.errors) - {"note"}:
        return None
    form.errors.pop("note", None)
    changes = {k: v for k, v in form.cleaned_data.items() if v is not None and k != "note"}
    settings = {**policy.as_dict(), **changes}
    errors = policy_errors(model, settings)
    if errors:
        for field, messages in errors.items():
            form.add_error(field.split(".")[0] if field.split(".")[0] in form.fields else None,
                           messages)  # fmt: skip
        return None
    return RoutingPolicy(model=model, version=policy.version + 1, **settings)
