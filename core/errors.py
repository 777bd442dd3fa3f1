"""One error shape for the whole API: {"error": {"code", "message", "fields"}}."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, renderers, serializers
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler


class ApplicationError(Exception):
    """A request that is well-formed but cannot be carried out in the current state.

    Services raise it with a message a person can act on; the API turns it into a 409
    (or the status given) and pages show the message.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "conflict",
        status: int = 409,
        fields: dict[str, list[str]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.fields = fields or {}
        self.extra = extra or {}


def forbidden(message: str) -> ApplicationError:
    """A 403 for an object-level refusal (the role is right, the object is not yours)."""
    return ApplicationError(message, code="permission_denied", status=403)


def not_found(message: str) -> ApplicationError:
    """A 404 from a service: the object does not exist, or not for this caller."""
    return ApplicationError(message, code="not_found", status=404)


def invalid(fields: dict[str, list[str]]) -> ApplicationError:
    """A 400 naming every bad field; the message repeats the first so that it reads alone."""
    first = next(iter(fields.items()))
    return ApplicationError(
        f"Invalid input. {first[0]}: {first[1][0]}", code="invalid", status=400, fields=fields
    )


def flatten_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested error detail into {"items.3.features.income": ["..."]}."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            out.update(flatten_errors(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            return {prefix or "non_field_errors": [str(item) for item in detail]} if detail else {}
        out = {}
        for index, item in enumerate(detail):
            out.update(flatten_errors(item, f"{prefix}.{index}" if prefix else str(index)))
        return out
    return {prefix or "non_field_errors": [str(detail)]}


def error_body(code: str, message: str, fields: dict | None = None, **extra: Any) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}, **extra}}


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text="invalid, conflict, idempotency_conflict, permission_denied, "
        "not_authenticated, not_found, ..."
    )
    message = serializers.CharField(help_text="what went wrong, in words a person can act on")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text='messages per field path, e.g. {"items.3.features.income": ["must be at '
        'least 0, got -5"]}; empty when no field is at fault',
    )


class ErrorSerializer(serializers.Serializer):
    """The body of every error response (documentation of `error_body`)."""

    error = ErrorDetailSerializer()


def _summary(fields: dict[str, list[str]]) -> str:
    parts = [f"{name}: {messages[0]}" for name, messages in list(fields.items())[:5]]
    more = len(fields) - len(parts)
    return "Invalid input. " + "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, ApplicationError):
        body = error_body(exc.code, exc.message, exc.fields, **exc.extra)
        return Response(body, status=exc.status)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = flatten_errors(exc.detail)
        response.data = error_body("invalid", _summary(fields), fields)
    else:
        code = exc.default_code if isinstance(exc, exceptions.APIException) else "error"
        response.data = error_body(code, str(getattr(exc, "detail", exc)))
    return response


class JSONErrors:
    """For API views whose success is not JSON (Markdown, Parquet, a zip): their errors keep
    the one JSON body and content type of every other error."""

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code >= 400:
            response.accepted_renderer = renderers.JSONRenderer()
            response.accepted_media_type = "application/json"
        return response
