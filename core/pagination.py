"""Cursor pagination for every list of the API, with cursors that were not given out refused
as bad input (400 naming `cursor`) rather than reaching the database (a garbage position used
to be a 500)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError

INVALID = "is not a cursor this list gave out: start again without it"
BIGINT = 2**63


class CursorPagination(pagination.CursorPagination):
    def paginate_queryset(self, queryset, request, view=None):
        ordering = self.ordering if isinstance(self.ordering, str) else self.ordering[0]
        self._position_field = queryset.model._meta.get_field(ordering.lstrip("-"))
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise ValidationError({self.cursor_query_param: [INVALID]}) from None
        if cursor is not None and cursor.position is not None:
            self._check_position(cursor.position)
        return cursor

    def _check_position(self, position: str) -> None:
        field = self._position_field
        try:
            value = field.to_python(position)
        except (DjangoValidationError, TypeError, ValueError):
            raise ValidationError({self.cursor_query_param: [INVALID]}) from None
        integer = isinstance(field, models.IntegerField | models.AutoField)
        if value is None or (integer and not -BIGINT <= value < BIGINT) or "\x00" in position:
            raise ValidationError({self.cursor_query_param: [INVALID]})
