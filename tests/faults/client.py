"""The bridge as Entra and an operator see it: its SCIM endpoint and its admin API, over HTTP."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx

from bridge.targets.signing import new_secret
from tests.factories import entra_group, entra_user, patch
from tests.fakes.scim_target import ScimTarget
from tests.fakes.webhook_target import WebhookTarget
from tests.faults.harness import Stack

SCIM_JSON = "application/scim+json"
PAGE = 1000
"""Resources per page when reading the directory."""

QUIET_POLLS = 2
"""Consecutive /admin/status polls that must show nothing to do for the bridge to be quiet."""

POLL_SECONDS = 0.25


@dataclass
class TargetHandle:
    """A target registered in the bridge, and the fake app behind it."""

    config: dict
    fake: WebhookTarget | ScimTarget | None

    @property
    def id(self) -> str:
        return self.config["id"]

    @property
    def name(self) -> str:
        return self.config["name"]


class BridgeClient:
    """HTTP clients for one stack's SCIM endpoint and admin API; safe to share between
    threads (each thread has its own connection pool)."""

    def __init__(self, stack: Stack, timeout: float = 10.0) -> None:
        self.stack = stack
        self.timeout = timeout
        self._names = 0
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()

    @property
    def http(self) -> httpx.Client:
        """This thread's HTTP client."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(base_url=self.stack.url, timeout=self.timeout)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()

    # --- SCIM, as Entra calls it ----------------------------------------------------------
    def scim(self, method: str, path: str, body: dict | None = None, **kw) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.stack.scim_token}"}
        if body is not None:
            headers["Content-Type"] = SCIM_JSON
            kw["json"] = body
        return self.http.request(method, "/scim/v2" + path, headers=headers, **kw)

    def create_user(self, **overrides) -> dict:
        return _ok(self.scim("POST", "/Users", entra_user(**overrides)), 201)

    def create_group(self, **overrides) -> dict:
        return _ok(self.scim("POST", "/Groups", entra_group(**overrides)), 201)

    def patch_user(self, uid: str, *operations: dict) -> None:
        _ok(self.scim("PATCH", f"/Users/{uid}", patch(*operations)), 200, 204)

    def set_user(self, uid: str, path: str, value) -> None:
        self.patch_user(uid, {"op": "replace", "path": path, "value": value})

    def members(self, gid: str, op: str, uids: list[str]) -> None:
        """Add (``add``) or remove (``remove``) users, as Entra does: one operation each."""
        if op == "add":
            operations = [{"op": "add", "path": "members", "value": [{"value": u} for u in uids]}]
        else:
            operations = [{"op": "remove", "path": f'members[value eq "{u}"]'} for u in uids]
        _ok(self.scim("PATCH", f"/Groups/{gid}", patch(*operations)), 200, 204)

    def delete(self, kind: str, rid: str) -> None:
        _ok(self.scim("DELETE", f"/{kind}s/{rid}"), 204, 404)

    def list(self, endpoint: str, filter: str | None = None) -> list[dict]:
        found: list[dict] = []
        while True:
            params = {"startIndex": len(found) + 1, "count": PAGE}
            if filter:
                params["filter"] = filter
            page = _ok(self.scim("GET", endpoint, params=params), 200).get("Resources") or []
            found.extend(page)
            if len(page) < PAGE:
                return found

    def clear_directory(self) -> None:
        """Delete every group and user through SCIM."""
        for group in self.list("/Groups"):
            self.delete("Group", group["id"])
        for user in self.list("/Users"):
            self.delete("User", user["id"])

    # --- admin API ------------------------------------------------------------------------
    def admin(self, method: str, path: str, **kw) -> httpx.Response:
        return self.http.request(method, "/admin" + path, headers=self.stack.admin_headers(), **kw)

    def status(self) -> dict:
        return _ok(self.admin("GET", "/status"), 200)

    def add_webhook(self, fake: WebhookTarget, **settings) -> TargetHandle:
        secret = new_secret()
        fake.model.secret = secret
        body = {"kind": "webhook", "url": fake.url, "signing_secret": secret, **settings}
        return TargetHandle(self._add(body), fake)

    def add_webhook_url(self, url: str, **settings) -> TargetHandle:
        """A webhook target at ``url``, with no fake app behind it."""
        body = {"kind": "webhook", "url": url, "signing_secret": new_secret(), **settings}
        return TargetHandle(self._add(body), None)

    def add_scim(self, fake: ScimTarget, **settings) -> TargetHandle:
        auth = {"type": "bearer", "token": fake.token}
        body = {"kind": "scim", "url": fake.url, "auth": auth, **settings}
        return TargetHandle(self._add(body), fake)

    def _add(self, body: dict) -> dict:
        with self._lock:
            self._names += 1
            number = self._names
        body.setdefault("name", f"t{number}-{body['kind']}")
        return _ok(self.admin("POST", "/targets", json=body), 201)

    def change_target(self, handle: TargetHandle, **changes) -> None:
        handle.config = _ok(self.admin("PATCH", f"/targets/{handle.id}", json=changes), 200)

    def remove_targets(self) -> None:
        for config in _ok(self.admin("GET", "/targets"), 200):
            _ok(self.admin("DELETE", f"/targets/{config['id']}"), 204, 404)

    def target_status(self, handle: TargetHandle) -> dict:
        return _ok(self.admin("GET", f"/targets/{handle.id}"), 200)["status"]

    def deliveries(self, handle: TargetHandle, limit: int = 1000) -> list[dict]:
        return _ok(self.admin("GET", f"/targets/{handle.id}/deliveries?limit={limit}"), 200)

    def failed(self, handle: TargetHandle) -> list[dict]:
        return _ok(self.admin("GET", f"/targets/{handle.id}/failed"), 200)

    def replay_failed(self, handle: TargetHandle) -> int:
        return _ok(self.admin("POST", f"/targets/{handle.id}/failed/replay", json={}), 202)[
            "replayed"
        ]

    # --- waiting --------------------------------------------------------------------------
    def wait_quiet(self, timeout: float) -> bool:
        """Whether the bridge had nothing left to do, for QUIET_POLLS polls in a row,
        within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        streak = 0
        while time.monotonic() < deadline:
            try:
                streak = streak + 1 if is_quiet(self.status()) else 0
            except (httpx.HTTPError, AssertionError):
                streak = 0
            if streak >= QUIET_POLLS:
                return True
            time.sleep(POLL_SECONDS)
        return False


def is_quiet(status: dict) -> bool:
    """Nothing in the change stream, nothing queued, running, scheduled or waiting, and
    nothing pending in a target's lanes."""
    changes = status["changes"]
    if changes["length"] or changes["pending"]:
        return False
    for counts in status["queues"].values():
        for name, value in counts.items():
            if name != "failed" and isinstance(value, int) and value:
                return False
    return not any(target.get("pending") for target in status.get("targets", []))


def _ok(response: httpx.Response, *statuses: int):
    if response.status_code not in statuses:
        raise AssertionError(
            f"{response.request.method} {response.request.url}: HTTP {response.status_code}, "
            f"expected {statuses}: {response.text[:500]}"
        )
    return response.json() if response.content else None
