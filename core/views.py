from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import Resolver404, resolve, reverse
from django.views.decorators.csrf import csrf_exempt

from core import roles as r
from core.errors import error_body

# Where each role works, in the order the home page lists them.
PLACES = [
    (r.REVIEWER, "reviews:queue", "Review queue", "Claim the next case; confirm or override it."),
    (r.SENIOR_REVIEWER, "reviews:stats", "Reviewer statistics", "Agreement, speed, accuracy."),
    (r.AUDITOR, "reviews:stats", "Reviewer statistics", "Agreement, speed, automation bias."),
    (r.AUDITOR, "audit:home", "Audit trail", "Verify the chain, browse events, export the log."),
    (r.AUDITOR, "oversight:reports", "Group reports", "Override and outcome rates by group."),
    (r.SENIOR_REVIEWER, "oversight:reports", "Group reports", "Override rates by group."),
    (r.MODEL_OWNER, "oversight:reports", "Group reports", "Your models: groups, drift, breaker."),
    (r.MODEL_OWNER, "models_registry:list", "Models", "Model cards, versions, routing policies."),
    (r.AUDITOR, "models_registry:list", "Model cards", "What each model is for and how it does."),
]


def home(request: HttpRequest) -> HttpResponse:
    user_roles = r.roles_of(request.user)
    places, seen = [], set()
    for role, name, title, text in PLACES:
        if role in user_roles and name not in seen:
            seen.add(name)
            places.append({"url": reverse(name), "title": title, "text": text, "role": role})
    return render(request, "core/home.html", {"places": places})


@csrf_exempt  # it changes nothing: a POST there is a 404, not an HTML page about a CSRF cookie
def api_not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    """Any /api/ path that names no endpoint: a JSON 404 in the API's error shape (with a hint
    when only the final slash is missing), not Django's HTML page."""
    message = f"No endpoint at {request.path}."
    if not request.path.endswith("/") and _is_endpoint(request.path + "/"):
        message += f" Did you mean {request.path}/ (with the final slash)?"
    message += " The API is described at /api/schema/ and /api/docs/."
    return JsonResponse(error_body("not_found", message), status=404)


def _is_endpoint(path: str) -> bool:
    try:
        return resolve(path).func is not api_not_found
    except Resolver404:
        return False
