"""Parsing JSON in the API: DRF's parser and JSON field, with two kinds of input refused as bad
input (a 400 naming the problem) instead of a 500: JSON nested past Python's recursion limit,
and strings that cannot be stored (NUL, unpaired surrogates: core.text)."""

from __future__ import annotations

from rest_framework import parsers, serializers
from rest_framework.exceptions import ParseError, ValidationError

from core import text


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
        bad = text.bad_text(data)
        if bad:
            raise ValidationError(bad)
        return data


class JSONField(serializers.JSONField):
    """A serializer JSON field for text that arrives unparsed (multipart form fields), with
    the same refusals as the JSON parser, as the field's own errors."""

    def to_internal_value(self, data):
        try:
            value = super().to_internal_value(data)
        except RecursionError:
            self.fail("invalid")
        bad = text.bad_text(value)
        if bad:
            raise serializers.ValidationError(
                [f"{where}: {messages[0]}" for where, messages in bad.items()]
            )
        return value
