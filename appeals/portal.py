"""The affected person's portal, /my-decision/: no account, a reference and an access code.

Every page works without JavaScript, at 375 px wide and with the keyboard alone, and prints
cleanly. Nothing here shows another person's data, a reviewer's name, protected attributes
or the model's numbers: the pages show the notice (appeals.notice), the appeal and its
progress, and offer the receipt."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from appeals import codes, receipt, services, sessions
from appeals.forms import AppealForm, SignInForm
from appeals.models import Appeal, DecisionAccess
from appeals.notice import notice_for
from audit import keys
from core.errors import ApplicationError

# One message for every refusal: it never says which of the two was wrong, nor whether the
# reference exists or is locked.
REFUSED = (
    "We could not sign you in with that reference and access code. Check both and try "
    "again. After several tries that fail, signing in pauses for a while (15 minutes or more)."
)
ENDED = {
    "idle": "Your session ended after 30 minutes without activity. Sign in again.",
    "code_replaced": "A new access code was issued for this decision: sign in with it.",
    "code_expired": "Your access code has expired: ask the organisation for a new one.",
}
# The form's text and corrections are small; only the attachment may be large.
MAX_BODY = settings.APPEAL_ATTACHMENT_MAX_BYTES + 256 * 1024


def _person(access: DecisionAccess) -> str:
    return f"person:{access.reference}"


def signed_in(view: Callable) -> Callable:
    """The view gets the person's access row; without a live session, the sign-in page."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        access, why = sessions.current(request)
        if access is None:
            if why in ENDED:
                messages.info(request, ENDED[why])
            return redirect("portal:home")
        return view(request, access, *args, **kwargs)

    return wrapper


def _private(response: HttpResponse) -> HttpResponse:
    # (Referrer-Policy stays Django's same-origin: with no-referrer, browsers send
    # `Origin: null` with the forms, which CSRF protection rightly refuses.)
    response["Cache-Control"] = "no-store"
    return response


def _sign_in_page(request: HttpRequest, form: SignInForm, *, error: str = "", status: int = 200):
    context = {"form": form, "error": error, "portal": True}
    return _private(render(request, "appeals/portal/sign_in.html", context, status=status))


@never_cache
def home(request: HttpRequest) -> HttpResponse:
    access, why = sessions.current(request)
    if access is None:
        if why in ENDED:
            messages.info(request, ENDED[why])
        return _sign_in_page(request, SignInForm())
    return _notice_page(request, access)


def _notice_page(request: HttpRequest, access: DecisionAccess) -> HttpResponse:
    decision = access.decision
    context = {
        "portal": True,
        "signed_in": True,
        "notice": notice_for(decision, access),
        "receipt_ready": receipt.receipt_for(decision) is not None,
        "vkey": keys.vkey() if keys.configured() else "",
    }
    return _private(render(request, "appeals/portal/notice.html", context))


@never_cache
def sign_in(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":  # a reload of a refused sign-in: the form again
        return redirect("portal:home")
    form = SignInForm(request.POST)
    if not form.is_valid():
        return _sign_in_page(request, form, status=400)
    result = services.portal_sign_in(
        reference=form.cleaned_data["reference"],
        code=form.cleaned_data["access_code"],
        client_address=sessions.client_address(request),
    )
    if not result.ok:
        status = 429 if result.outcome == "rate_limited" else 400
        return _sign_in_page(request, SignInForm(), error=REFUSED, status=status)
    sessions.start(request, result.access)
    return redirect("portal:home")


@never_cache
@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    access, _why = sessions.current(request)
    if access is not None:
        sessions.end(request, access, "signed_out")
        messages.info(request, "You have signed out.")
    return redirect("portal:home")


@never_cache
@csrf_exempt  # the body's size is checked before it is read; CSRF right after (_appeal)
def appeal(request: HttpRequest) -> HttpResponse:
    if request.method == "POST" and _content_length(request) > MAX_BODY:
        page = render(request, "appeals/portal/too_large.html", {"portal": True}, status=413)
        return _private(page)
    return _appeal(request)


def _content_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


@csrf_protect
@signed_in
def _appeal(request: HttpRequest, access: DecisionAccess) -> HttpResponse:
    decision = access.decision
    if Appeal.objects.filter(decision=decision).exists():
        return redirect("portal:home")
    why = services.appealability(decision)
    if not why.allowed:
        return _appeal_page(
            request, access, None, why=why, status=409 if request.method == "POST" else 200
        )
    if request.method != "POST":
        return _appeal_page(request, access, AppealForm(decision=decision), why=why)
    form = AppealForm(request.POST, request.FILES, decision=decision)
    if not form.is_valid():
        return _appeal_page(request, access, form, why=why, status=400)
    try:
        services.appeal_file(
            decision=decision,
            grounds=form.cleaned_data["grounds"],
            corrections=form.corrections(),
            contact_email=form.cleaned_data["contact_email"],
            attachment=_uploaded(form.cleaned_data.get("attachment")),
            via=Appeal.Via.PORTAL,
            actor=_person(access),
        )
    except ApplicationError as exc:
        if exc.code != "invalid":
            messages.error(request, exc.message)
            return redirect("portal:home")
        form.add_service_errors(exc.fields)
        return _appeal_page(request, access, form, why=why, status=400)
    messages.success(
        request,
        "Your appeal was received. A senior reviewer who took no part in the decision will "
        f"answer within {settings.APPEAL_SLA_DAYS} days.",
    )
    return redirect("portal:home")


def _uploaded(upload) -> tuple[str, bytes] | None:
    if not upload:
        return None
    return upload.name, upload.read(settings.APPEAL_ATTACHMENT_MAX_BYTES + 1)


def _appeal_page(request, access, form, *, why, status: int = 200) -> HttpResponse:
    context = {
        "portal": True,
        "signed_in": True,
        "reference": codes.show_reference(access.reference),
        "form": form,
        "why": why,
        "sla_days": settings.APPEAL_SLA_DAYS,
    }
    return _private(render(request, "appeals/portal/appeal.html", context, status=status))


@never_cache
@require_POST
@signed_in
def withdraw(request: HttpRequest, access: DecisionAccess) -> HttpResponse:
    appeal = Appeal.objects.filter(decision_id=access.decision_id).first()
    if appeal is None:
        return redirect("portal:home")
    try:
        services.appeal_withdraw(appeal_id=appeal.pk, actor=_person(access))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Your appeal is withdrawn.")
    return redirect("portal:home")


@never_cache
@signed_in
def receipt_download(request: HttpRequest, access: DecisionAccess) -> HttpResponse:
    body = receipt.receipt_for(access.decision)
    if body is None:
        messages.info(
            request,
            "Your receipt is not ready yet: the record is signed every minute or so. Try "
            "again shortly.",
        )
        return redirect("portal:home")
    response = HttpResponse(receipt.receipt_bytes(body), content_type="application/json")
    name = f"receipt-{codes.show_reference(access.reference)}.json"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["X-Content-Type-Options"] = "nosniff"
    return _private(response)
