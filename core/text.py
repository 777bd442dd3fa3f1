"""Text that cannot be stored: the NUL character (PostgreSQL refuses it in text columns) and
unpaired UTF-16 surrogates (JSON's "\\ud800" escapes decode to them, and they cannot be
encoded as UTF-8). Both are refused at the edge, by name, instead of failing deep inside."""

from __future__ import annotations

import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")
NUL_MESSAGE = "must not contain the NUL character (\\u0000)"
SURROGATE_MESSAGE = "must not contain an unpaired surrogate (\\ud800–\\udfff): not valid Unicode"
# A body full of bad strings is named by its first few fields, not a thousand.
MOST = 20


def problem(text: str) -> str | None:
    """Why `text` cannot be stored, or None when it can."""
    if "\x00" in text:
        return NUL_MESSAGE
    if _SURROGATE.search(text):
        return SURROGATE_MESSAGE
    return None


def bad_text(data: Any, path: str = "") -> dict[str, list[str]]:
    """Every string (key or value) of parsed JSON that cannot be stored, by its path
    ("items.3.groups.race"); at most MOST of them."""
    found: dict[str, list[str]] = {}
    _walk(data, path, found)
    return found


def _walk(value: Any, path: str, found: dict[str, list[str]]) -> None:
    if len(found) >= MOST:
        return
    if isinstance(value, str):
        why = problem(value)
        if why:
            found[path or "non_field_errors"] = [why]
    elif isinstance(value, dict):
        for key, item in value.items():
            name = str(key)
            why = problem(name)
            # The key itself is unprintable: name it by its position instead.
            where = f"{path}.{name}" if path else name
            if why:
                where = f"{path}.<key {len(found)}>" if path else f"<key {len(found)}>"
                found[where] = [f"key {why}"]
                continue
            _walk(item, where, found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, f"{path}.{index}" if path else str(index), found)
