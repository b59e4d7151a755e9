"""Webhook connector: a signed JSON event per change (Standard Webhooks).

Events: ``user.created``, ``user.updated``, ``user.deactivated``, ``user.deleted``,
``group.created``, ``group.updated``, ``group.deleted``, ``group.members_added``,
``group.members_removed``. The body is ``{"type", "timestamp", "data"}``; ``data`` carries
the resource's id and its mapped current state. ``webhook-id`` is the idempotency key:
it stays the same across retries of the same content, so receivers can de-duplicate.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from bridge.runtime import clock
from bridge.targets import signing
from bridge.targets.base import Applied, Change
from bridge.targets.http import TargetHttp, raise_for_answer

EVENT_OF_ACTION = {
    "create": "created",
    "update": "updated",
    "deactivate": "deactivated",
    "delete": "deleted",
}


class WebhookConnector:
    """Sends each change to ``url`` as signed events (Standard Webhooks)."""

    def __init__(self, url: str, secret: str, http: TargetHttp) -> None:
        self.url = url
        self.secret = secret
        self.http = http

    def apply(self, change: Change) -> Applied:
        """Send the change's events: the resource's, then member additions and removals."""
        status: int | None = None
        data: dict[str, Any]
        if change.action != "none":
            data = {"id": change.id, "resource": change.payload}
            status = self._send(
                f"{change.kind}.{EVENT_OF_ACTION[change.action]}", data, change.idempotency_key
            )
        if change.members_added:
            data = {"id": change.id, "members": [{"id": m} for m in change.members_added]}
            status = self._send("group.members_added", data, change.idempotency_key + "_a")
        if change.members_removed:
            data = {"id": change.id, "members": [{"id": m} for m in change.members_removed]}
            status = self._send("group.members_removed", data, change.idempotency_key + "_r")
        return Applied(status)

    def check(self) -> Applied:
        """A ``bridge.ping`` event: the receiver answers 2xx when it is up."""
        return Applied(self._send("bridge.ping", {}, f"msg_ping_{int(time.time())}"))

    def close(self) -> None:
        """Close the pooled connections."""
        self.http.close()

    def _send(self, event: str, data: dict[str, Any], msg_id: str) -> int:
        body = orjson.dumps(
            {
                "type": event,
                "timestamp": clock.now("milliseconds"),
                "data": data,
            }
        )
        headers = signing.headers(self.secret, msg_id, int(time.time()), body)
        headers["Content-Type"] = "application/json"
        what = f"webhook {event}"
        answer = self.http.request("POST", self.url, body=body, headers=headers, what=what)
        raise_for_answer(answer, what)
        return answer.status_code
