"""Parsing JSON in the API: DRF's parser and JSON field, with JSON nested past Python's
recursion limit refused as bad input (a 400 naming the problem) instead of a 500."""

from __future__ import annotations

from rest_framework import parsers, serializers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None


class JSONField(serializers.JSONField):
    """A serializer JSON field for text that arrives unparsed (multipart form fields), with
    the same refusal of JSON nested too deeply, as the field's own "must be valid JSON"."""

    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except RecursionError:
            self.fail("invalid")
