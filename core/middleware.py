"""Checks every request meets before a view sees it: a body no larger than its endpoint takes
(413), and no text that cannot be stored in its query string or form fields (400). Both answer
in the API's error shape under /api/ and as a page elsewhere."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from core import text
from core.errors import error_body

API = "/api/"


@cache
def _limits() -> list[tuple[re.Pattern, int, str]]:
    return [
        (re.compile(entry[0]), entry[1], entry[2] if len(entry) > 2 else "refused.html")
        for entry in settings.REQUEST_BODY_LIMITS
    ]


def body_limit(path: str) -> tuple[int, str]:
    """The most bytes a request body to `path` may have, and the page that says so
    (settings.REQUEST_BODY_LIMITS, first match; settings.REQUEST_BODY_LIMIT otherwise)."""
    return next(
        ((size, page) for pattern, size, page in _limits() if pattern.match(path)),
        (settings.REQUEST_BODY_LIMIT, "refused.html"),
    )


class RequestGuard:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refused = self.too_large(request) or self.bad_fields(request)
        return refused or self.get_response(request)

    def too_large(self, request: HttpRequest) -> HttpResponse | None:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit, page = body_limit(request.path)
        if length <= limit:
            return None
        message = (
            f"The request body is {length:,} bytes; {request.path} takes at most {limit:,} "
            "bytes. Send less at a time."
        )
        return _refusal(request, 413, "too_large", message, {}, page)

    def bad_fields(self, request: HttpRequest) -> HttpResponse | None:
        fields = _bad(request.GET.lists())
        # Form posts to pages; the API parses its own bodies (core.parsers, DRF fields).
        if request.method == "POST" and not request.path.startswith(API):
            content_type = request.META.get("CONTENT_TYPE", "")
            if content_type.startswith(("application/x-www-form-urlencoded", "multipart/")):
                fields.update(_bad(request.POST.lists()))
        if not fields:
            return None
        first, messages = next(iter(fields.items()))
        message = f"Invalid input. {first}: {messages[0]}"
        return _refusal(request, 400, "invalid", message, fields)


def _bad(pairs) -> dict[str, list[str]]:
    found = {}
    for name, values in pairs:
        for value in [name, *values]:
            why = text.problem(value)
            if why:
                found[name if value is not name else "<a field name>"] = [why]
                break
    return found


def _refusal(
    request: HttpRequest,
    status: int,
    code: str,
    message: str,
    fields: dict,
    page: str = "refused.html",
) -> HttpResponse:
    if request.path.startswith(API):
        return JsonResponse(error_body(code, message, fields), status=status)
    context = {"status": status, "message": message, "fields": fields}
    return render(request, page, context, status=status)
