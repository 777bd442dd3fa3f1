"""A webhook receiver for the tests: a real HTTP server on localhost that checks each batch's
signature the way a model service would, and remembers every delivery id it was sent."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from learning import secrets


@dataclass
class Arrival:
    delivery_id: str
    verified: bool
    labels: list[int]
    completed: bool = True  # False: the sender was gone before the answer could be sent


@dataclass
class Receiver:
    secret: str
    status: int = 200
    hold_seconds: float = 0.0  # how long the next held request is kept (a slow receiver)
    hold_next: int = 0  # how many requests to hold
    arrivals: list[Arrival] = field(default_factory=list)
    holding: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/labels"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers["Content-Length"]))
        timestamp = request.headers[secrets.TIMESTAMP_HEADER]
        verified = (
            secrets.verify(self.secret, timestamp, body, request.headers[secrets.SIGNATURE_HEADER])
            and abs(time.time() - int(timestamp)) < 300
        )
        payload = json.loads(body)
        arrival = Arrival(
            request.headers[secrets.DELIVERY_HEADER],
            verified,
            [label["id"] for label in payload["labels"]],
        )
        with self.lock:
            held = self.hold_next > 0
            self.hold_next -= held
            self.arrivals.append(arrival)
        if held:
            self.holding.set()
            time.sleep(self.hold_seconds)
        try:
            request.send_response(self.status if verified else 401)
            request.send_header("Content-Length", "0")
            request.end_headers()
            request.wfile.flush()
        except OSError:
            arrival.completed = False

    def accepted(self) -> list[Arrival]:
        """What a receiver that skips delivery ids it has seen would process."""
        seen, out = set(), []
        for arrival in self.arrivals:
            if arrival.verified and arrival.delivery_id not in seen:
                seen.add(arrival.delivery_id)
                out.append(arrival)
        return out
