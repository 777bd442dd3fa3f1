from __future__ import annotations

from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from core.permissions import role_required
from core.roles import REVIEWER
from reviews.models import ReviewTask


@role_required(REVIEWER)
def queue(request: HttpRequest) -> HttpResponse:
    counts = (
        ReviewTask.objects.filter(state=ReviewTask.State.OPEN)
        .values("decision__model__name", "kind")
        .annotate(n=Count("id"))
        .order_by("decision__model__name", "kind")
    )
    return render(request, "reviews/queue.html", {"counts": counts})
