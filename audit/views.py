from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from audit import selectors, services
from audit.models import AuditEvent
from core.permissions import role_required
from core.roles import AUDITOR


@role_required(AUDITOR)
def home(request: HttpRequest) -> HttpResponse:
    context = selectors.chain_status()
    context["recent"] = AuditEvent.objects.order_by("-seq")[:25]
    return render(request, "audit/home.html", context)


@require_POST
@role_required(AUDITOR)
def verify_now(request: HttpRequest) -> HttpResponse:
    services.verification_request(actor=request.user)
    messages.info(request, "Verification started; the result appears here when it is done.")
    return redirect("audit:home")
