"""A webhook receiver on 127.0.0.1 that verifies Standard Webhooks signatures and records
every event; it can be told to fail the next N requests or to be down."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
from werkzeug.wrappers import Request, Response

from bridge.targets.signing import SignatureError, verify


@dataclass
class WebhookReceiver:
    secret: str
    events: list[dict] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    attempt_ids: list[str] = field(default_factory=list)
    rejected: int = 0
    fail_next: int = 0
    fail_status: int = 500
    retry_after: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    on_event: Callable[[dict], None] | None = None
    """Called with each accepted event before the answer is sent (the sender waits)."""

    def __call__(self, environ, start_response):
        request = Request(environ)
        body = request.get_data()
        try:
            verify(self.secret, request.headers, body)
        except SignatureError:
            with self.lock:
                self.rejected += 1
            return Response("bad signature", 401)(environ, start_response)
        with self.lock:
            self.attempt_ids.append(request.headers["webhook-id"])
            if self.fail_next > 0:
                self.fail_next -= 1
                headers = {"Retry-After": self.retry_after} if self.retry_after else {}
                return Response("unavailable", self.fail_status, headers=headers)(
                    environ, start_response
                )
            event = orjson.loads(body)
            self.events.append(event)
            self.ids.append(request.headers["webhook-id"])
        if self.on_event is not None:
            self.on_event(event)
        return Response(status=204)(environ, start_response)

    def types(self) -> list[str]:
        return [e["type"] for e in self.events if e["type"] != "bridge.ping"]

    def of(self, event_type: str) -> list[dict]:
        return [e for e in self.events if e["type"] == event_type]
