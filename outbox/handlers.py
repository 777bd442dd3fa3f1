"""Who delivers each kind of message. Apps register their handlers when Django starts
(AppConfig.ready); a handler takes the Message and raises when delivery failed.

A handler must be safe to run twice for one message (a worker may die after delivering and
before the row says so): receivers get the message's `key` to recognise repeats."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Handler = Callable[[Any], None]
_handlers: dict[str, Handler] = {}


def register(kind: str, handler: Handler) -> None:
    _handlers[kind] = handler


def handler_for(kind: str) -> Handler:
    try:
        return _handlers[kind]
    except KeyError:
        raise LookupError(f"no handler is registered for {kind!r} messages") from None
