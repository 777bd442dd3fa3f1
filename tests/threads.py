"""Real threads for the concurrency tests: everyone released at the same moment."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connection


def at_once(fn: Callable[..., Any], calls: Sequence[tuple]) -> tuple[list, list[BaseException]]:
    """Run fn(*args) for each args in `calls`, each in its own thread, all started together by
    a barrier. Each thread closes its own database connection when done. Returns the results
    (in the order of `calls`; None where the call raised) and whatever was raised."""
    start = threading.Barrier(len(calls))
    results: list = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            start.wait()
            results[i] = fn(*calls[i])
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def post_at_once(client: Callable[[], Any], url: str, bodies: Sequence[dict]) -> list:
    """POST each body from its own thread, with its own client (client() makes one), all
    released at once; the responses in the order of `bodies`."""
    responses, errors = at_once(
        lambda body: client().post(url, body, format="json"), [(b,) for b in bodies]
    )
    assert errors == []
    return responses


def in_lockstep(
    steps: Sequence[Callable[[Any], Any]], items: Sequence[Any], expected: type[Exception]
) -> tuple[list[Exception], list[BaseException]]:
    """Each step function runs in its own thread over `items`, all of them on the same item at
    the same moment (a barrier per item). Returns the `expected` exceptions (refusals) and
    anything else raised; a thread that fails releases the others instead of leaving them at
    the barrier."""
    start = threading.Barrier(len(steps))
    refused: list[Exception] = []

    def run(step: Callable[[Any], Any]) -> None:
        try:
            for item in items:
                start.wait(timeout=60)
                try:
                    step(item)
                except expected as exc:
                    refused.append(exc)
        except BaseException:
            start.abort()
            raise

    _, errors = at_once(run, [(step,) for step in steps])
    return refused, errors
