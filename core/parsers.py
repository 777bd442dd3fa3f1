"""Parsing JSON in the API: DRF's parser and JSON field, with two kinds of input refused as bad
input (a 400 naming the problem) instead of a 500: JSON nested past Python's recursion limit,
and strings that cannot be stored (NUL, unpaired surrogates: core.text)."""

from __future__ import annotations

import io
import re

from rest_framework import parsers, serializers
from rest_framework.exceptions import ParseError, ValidationError

from core import text

# In UTF-8 JSON, a string can hold NUL or an unpaired surrogate only through an escape
# (\u0000, \ud800-\udfff): raw, NUL is a control character json refuses inside a string and
# a syntax error outside one, and a surrogate's bytes are not valid UTF-8. A body without such
# an escape cannot hold either, so its strings need not be walked one by one (a bulk of 1,000
# decisions has ~19,000 of them).
_MAYBE_BAD = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            data = super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
        utf8 = parsers.get_encoding(parser_context or {}).lower().replace("_", "-") in {
            "utf-8",
            "utf8",
        }
        if utf8 and not _MAYBE_BAD.search(raw):
            return data
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
