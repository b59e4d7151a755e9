"""A webhook-receiving app that keeps a model of its users and groups from the events.

It verifies every Standard Webhooks signature (401 when it does not match), applies each
``webhook-id`` once, as a receiver that de-duplicates must, and builds what the app would
hold: ``user.created``/``user.updated`` make a user present and active with the event's
``resource``, ``user.deactivated`` keeps it present but inactive, ``user.deleted`` removes
it; ``group.*`` events do the same for groups, and ``group.members_added``/``_removed``
change member sets.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import orjson
from werkzeug.wrappers import Request, Response

from bridge.targets.signing import SignatureError, verify
from tests.fakes.faulty import FaultMiddleware, Knobs, Server


@dataclass
class HeldUser:
    resource: dict
    active: bool


@dataclass
class HeldGroup:
    resource: dict | None
    members: set[str] = field(default_factory=set)


class WebhookModel:
    """The receiving app's state, built from the events it accepted."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.users: dict[str, HeldUser] = {}
        self.groups: dict[str, HeldGroup] = {}
        self.seen: set[str] = set()
        self.events: list[dict] = []
        self.duplicates = 0
        self.rejected = 0
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        request = Request(environ)
        body = request.get_data()
        try:
            verify(self.secret, request.headers, body)
        except SignatureError as exc:
            with self.lock:
                self.rejected += 1
            return Response(f"bad signature: {exc}", 401)(environ, start_response)
        with self.lock:
            msg_id = request.headers["webhook-id"]
            if msg_id in self.seen:
                self.duplicates += 1
            else:
                self.seen.add(msg_id)
                event = orjson.loads(body)
                self.events.append(event)
                self._apply(event["type"], event["data"])
        return Response(status=204)(environ, start_response)

    def _apply(self, kind: str, data: dict) -> None:
        rid = data.get("id")
        if kind in ("user.created", "user.updated", "user.deactivated"):
            self.users[rid] = HeldUser(data["resource"], kind != "user.deactivated")
        elif kind == "user.deleted":
            self.users.pop(rid, None)
        elif kind in ("group.created", "group.updated"):
            group = self.groups.setdefault(rid, HeldGroup(None))
            group.resource = data["resource"]
        elif kind == "group.deleted":
            self.groups.pop(rid, None)
        elif kind == "group.members_added":
            self.groups.setdefault(rid, HeldGroup(None)).members.update(_ids(data))
        elif kind == "group.members_removed":
            self.groups.setdefault(rid, HeldGroup(None)).members.difference_update(_ids(data))

    def snapshot(self) -> tuple[dict[str, HeldUser], dict[str, HeldGroup]]:
        """A consistent copy of the users and groups held now."""
        with self.lock:
            users = {k: HeldUser(dict(v.resource), v.active) for k, v in self.users.items()}
            groups = {k: HeldGroup(v.resource, set(v.members)) for k, v in self.groups.items()}
        return users, groups

    def count(self, kind: str | None = None) -> int:
        """Events applied (of one ``type``, or all but pings)."""
        with self.lock:
            return sum(
                1
                for e in self.events
                if e["type"] == kind or (kind is None and e["type"] != "bridge.ping")
            )


def _ids(data: dict) -> set[str]:
    return {m["id"] for m in data.get("members") or []}


class WebhookTarget:
    """The model served on 127.0.0.1 behind fault knobs (``url`` is the endpoint)."""

    def __init__(self, secret: str) -> None:
        self.model = WebhookModel(secret)
        self.knobs = Knobs()
        self.server = Server(FaultMiddleware(self.model, self.knobs))

    @property
    def url(self) -> str:
        return self.server.url + "/events"

    def start(self) -> WebhookTarget:
        self.server.up()
        return self

    def stop(self) -> None:
        self.knobs.release()
        self.server.down()
