"""OpenAPI: what drf-spectacular cannot see in Oversight's views, described in one place.

- Every operation documents its error responses, all with the one body of core.errors
  (`{"error": {"code", "message", "fields"}}`): 401/403 when it needs a role, 404 when its path
  names an object, 409 when it changes state, 413 when it takes a body, and 400, 414 and 429
  everywhere (any query string is checked for NUL characters and lone surrogates, a paginated
  list refuses a cursor it did not give out; the web server's URL limit; the throttles).
- An APIView that pages by hand declares its paginator as a nested `Pagination` class; its
  list is documented as the page it returns ({next, previous, results}), not a bare array.
- An output field whose default is None (a missing related object) is nullable.
- Any other error an operation gives is declared on it with `error(description)`.
- Every operation is grouped by a tag, has a one-line summary and, when it takes a body, an
  example of one (core.api_docs); an operation's own extend_schema wins.
"""

from __future__ import annotations

import uritemplate
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework.fields import empty
from rest_framework.pagination import BasePagination
from rest_framework.permissions import AllowAny

from core import api_docs
from core.errors import ErrorSerializer

ERRORS = {
    "400": "Invalid input: `fields` names every bad field (and item, in a batch); on any "
    "operation, a query string with a NUL character or a lone surrogate, and on a list, a "
    "cursor it did not give out.",
    "401": "No valid credentials: send `Authorization: Token <token>`, or log in.",
    "403": "Your role, or this object, does not allow it.",
    "404": "No such object, or none that you may see.",
    "409": "Not possible in the current state (already done, or an idempotency key reused "
    "with a different body); nothing was changed.",
    "413": "The request body is larger than this endpoint takes (see its description; 2.5 MB "
    "unless stated); nothing was read.",
    "414": "The URL is too long (the web server's limit, 4,094 bytes for the request line).",
    "429": "Too many requests from this token, person or address; wait the number of seconds "
    "in the Retry-After header.",
}
CHANGES = ("POST", "PUT", "PATCH", "DELETE")


class OversightAutoSchema(AutoSchema):
    def get_tags(self) -> list[str]:
        tag = api_docs.tag_of(self.path)
        return [tag] if tag else super().get_tags()

    def get_summary(self) -> str | None:
        return api_docs.SUMMARIES.get((self.method, self.path)) or super().get_summary()

    def get_examples(self) -> list[OpenApiExample]:
        return [
            OpenApiExample(name, value=body, request_only=True, media_type=(media or [None])[0])
            for name, body, *media in api_docs.EXAMPLES.get((self.method, self.path), [])
        ] or super().get_examples()

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self._error_codes():
            error = OpenApiResponse(ErrorSerializer, description=ERRORS[code])
            # An operation's own description of a code wins; errors are always JSON.
            responses.setdefault(
                code, self._get_response_for_code(error, code, ["application/json"], direction)
            )
        return responses

    def _error_codes(self) -> list[str]:
        # Any request may be refused as bad input: its query string is checked whatever the
        # operation (core.middleware.RequestGuard), and lists refuse a cursor they did not give.
        codes = ["400"]
        if not all(isinstance(p, AllowAny) for p in self.view.get_permissions()):
            codes += ["401", "403"]
        if uritemplate.variables(self.path):
            codes.append("404")
        if self.method in CHANGES:
            codes.append("409")
        if self._takes_a_body():
            codes.append("413")
        return [*codes, "414", "429"]

    def _takes_a_body(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None

    def _get_paginator(self):
        paginator = super()._get_paginator()
        declared = getattr(self.view, "Pagination", None)
        if paginator is None and self.method == "GET" and _is_pagination(declared):
            return declared()
        return paginator

    def _get_serializer_field_meta(self, field, direction):
        meta = super()._get_serializer_field_meta(field, direction)
        # DRF renders a field's default when its source is missing (model_version of a
        # decision the client scored): a default of None is a null in the response.
        if direction == "response" and getattr(field, "default", empty) is None:
            meta["nullable"] = True
        return meta


def error(description: str) -> OpenApiResponse:
    """An error an operation gives besides those every operation documents (a GET that can
    conflict, a 404 on a path without an id, a 503...): the one error body, described."""
    return OpenApiResponse(ErrorSerializer, description=description)


def _is_pagination(value: object) -> bool:
    return isinstance(value, type) and issubclass(value, BasePagination)


def nullable_references(result: dict, generator, request, public) -> dict:
    """A nullable nested object comes out of drf-spectacular as `{"allOf": [ref], "nullable":
    true}`, which validators read as "must match ref" (null included, and null never does).
    Say what is meant, in OpenAPI 3.0: one of the referenced object, or null."""

    def mend(node):
        if isinstance(node, dict):
            if node.get("nullable") is True and len(node.get("allOf", ())) == 1:
                node.pop("nullable")
                node["oneOf"] = [node.pop("allOf")[0], {"enum": [None], "nullable": True}]
            for value in node.values():
                mend(value)
        elif isinstance(node, list):
            for value in node:
                mend(value)

    mend(result)
    return result


def tag_descriptions(result: dict, generator, request, public) -> dict:
    """The groups of /api/docs/ in their order, each with what it holds."""
    used = {tag for ops in result.get("paths", {}).values() for op in ops.values()
            for tag in op.get("tags", [])}  # fmt: skip
    ordered = api_docs.ORDER
    result["tags"] = [
        {"name": tag, "description": api_docs.TAG_DESCRIPTIONS.get(tag, "")}
        for tag in ordered + sorted(used - set(ordered))
        if tag in used
    ]
    return result
