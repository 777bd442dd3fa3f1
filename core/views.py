from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from core import roles as r

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
