"""SCIM 2.0 connector: the bridge as a careful SCIM client of a downstream app (RFC 7644).

* **create** looks for the account first (``userName eq``, else ``externalId eq``; groups
  by ``displayName eq``) and adopts a match instead of creating a duplicate; otherwise it
  POSTs, and a 409 (RFC 7644 §3.3) is resolved by matching on every key, then updating.
* **update** PATCHes (§3.5.2) only what differs from the payload it last sent: ``replace``
  for changed attributes, ``remove`` for vanished ones; nothing differs, nothing is sent.
  It PUTs (§3.5.1) a user it never recorded a payload for (a group gets a ``replace`` of
  every attribute instead: a PUT without ``members`` would empty it), and anything when
  the target's ``/ServiceProviderConfig`` says ``patch.supported: false`` (read once).
  A 404 means the account was deleted there: it is created again.
* **deactivate** is an update with ``active: false``; **delete** is DELETE, 404 included.
* **groups** are written without ``members``; members are then added in one PATCH per
  MEMBER_BATCH and removed with ``members[value eq "id"]`` paths (§3.5.2.2). Where PATCH
  is unsupported, the group is read and PUT back with its new member list.

Every request carries ``Idempotency-Key``: the change's key for its main write (stable
across retries), with a suffix for each further write the change needs, so no two
different requests of one change share a key.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from bridge.targets.base import (
    Applied,
    Change,
    TargetError,
    raise_for_response,
    translate_transport_error,
)

log = logging.getLogger(__name__)

SCIM_MEDIA_TYPE = "application/scim+json"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
CORE_SCHEMA = {
    "user": "urn:ietf:params:scim:schemas:core:2.0:User",
    "group": "urn:ietf:params:scim:schemas:core:2.0:Group",
}
ENDPOINT = {"user": "/Users", "group": "/Groups"}

MATCH_KEYS = {"user": ("userName", "externalId"), "group": ("displayName", "externalId")}
"""Attributes that identify an account on first contact, in order of preference."""

CASE_EXACT = frozenset({"externalId"})
"""Match keys compared case-sensitively (RFC 7643 §4.1, §3.1: the others are caseExact false)."""

NOT_SENT = frozenset({"schemas", "id", "meta", "members", "groups"})
"""Payload keys never written as attributes: set by the connector, the target, or apart."""

MEMBER_BATCH = 100
"""Members added, or remove operations, per PATCH request."""

PATCH_UNKNOWN_STATUSES = frozenset({404, 405, 501})
"""``/ServiceProviderConfig`` answers meaning "not published": PATCH is then assumed."""


class ScimConnector:
    """Writes changes to a SCIM 2.0 service provider at ``base_url`` (ending in ``/v2``)."""

    def __init__(self, base_url: str, client: httpx.Client) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = client
        self._patch: bool | None = None

    def apply(self, change: Change) -> Applied:
        """Bring the target's copy of one resource in line with ``change``."""
        return _Delivery(self, change).run()

    def check(self) -> Applied:
        """GET ``/ServiceProviderConfig``: any 2xx means the target is up."""
        response = self.request("GET", "/ServiceProviderConfig")
        return Applied(response.status_code)

    def patch_supported(self) -> bool:
        """Whether the target accepts PATCH (RFC 7643 §5), asked once per connector."""
        if self._patch is None:
            response = self.request("GET", "/ServiceProviderConfig", allow=PATCH_UNKNOWN_STATUSES)
            self._patch = _patch_flag(response)
        return self._patch

    def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        body: dict | None = None,
        params: dict | None = None,
        allow: frozenset[int] = frozenset(),
    ) -> httpx.Response:
        """One call; TargetError for network errors and non-2xx answers not in ``allow``."""
        headers = {"Accept": SCIM_MEDIA_TYPE}
        if key:
            headers["Idempotency-Key"] = key
        content = None
        if body is not None:
            headers["Content-Type"] = SCIM_MEDIA_TYPE
            content = orjson.dumps(body)
        what = f"SCIM {method} {path}"
        try:
            response = self.client.request(
                method, self.base_url + path, content=content, params=params, headers=headers
            )
        except httpx.HTTPError as exc:
            raise translate_transport_error(exc, what) from exc
        if response.status_code not in allow:
            raise_for_response(response, what)
        return response


class _Delivery:
    """One change applied: the calls it makes and what the target holds afterwards."""

    def __init__(self, connector: ScimConnector, change: Change) -> None:
        self.connector = connector
        self.change = change
        self.kind = change.kind
        self.endpoint = ENDPOINT[change.kind]
        self.status: int | None = None
        self.remote_id: str | None = change.state.get("remote_id")
        self.sent: dict | None = change.state.get("sent")
        self.members_done = False
        self.recreated = False
        self.skipped: list[str] = []
        self.added = self._refs(change.members_added)
        self.removed = self._refs(change.members_removed)

    def run(self) -> Applied:
        action = self.change.action
        if action == "delete":
            self._delete()
            return Applied(self.status)
        if action not in ("create", "update", "deactivate", "none"):
            raise TargetError(f"SCIM connector: unknown action {action!r}", retryable=False)
        if self.change.payload is None:
            raise TargetError(f"SCIM connector: {action} without a payload", retryable=False)
        body = self._body(self.change.payload)
        if action == "deactivate" and self.remote_id is None:
            self._deactivate_unknown(body)
        elif action == "create" or self.remote_id is None:
            self._create(body)
        elif action != "none":
            self._update(body)
        if self.kind == "group":
            self._members(body)
        remember: dict[str, Any] = {"remote_id": self.remote_id, "sent": self.sent}
        if self.kind == "group":
            remember["skipped_members"] = self.skipped
            if self.recreated:
                # a group created again holds none of its earlier members: the engine
                # forgets them and delivers the group again to add them back
                remember["members"] = []
        return Applied(self.status, remember)

    # --- resource -------------------------------------------------------------------------
    def _body(self, payload: dict) -> dict:
        """The attributes to write: the payload minus managed keys; users get ``active``."""
        body = {k: v for k, v in payload.items() if k not in NOT_SENT}
        if self.kind == "user":
            body["active"] = self.change.action != "deactivate"
        return body

    def _create(self, body: dict, label: str = "") -> None:
        found = self._match(body, every_key=False)
        if found is None:
            response = self._write(
                "POST", self.endpoint, label, self._resource(body), allow=frozenset({409})
            )
            if response.status_code != 409:
                self.remote_id = _resource_id(response, f"SCIM POST {self.endpoint}")
                self.sent = body
                return
            found = self._match(body, every_key=True)
            if found is None:
                raise TargetError(
                    f"SCIM POST {self.endpoint}: HTTP 409 but no account matches "
                    f"{_keys_text(self.kind, body)}",
                    retryable=False,
                    status=409,
                )
        self.remote_id = found["id"]
        self._bring(body, base=_without(found, NOT_SENT), removes=False, label=label + "m")

    def _update(self, body: dict) -> None:
        try:
            self._bring(body, base=self.sent, removes=True, label="")
        except TargetError as exc:
            if exc.status != 404:
                raise
            self.members_done = False
            if self.change.action == "deactivate":
                self.remote_id, self.sent = None, None  # gone there: nothing to deactivate
                return
            log.info("%s %s is gone from the target: creating it again", self.kind, self.remote_id)
            self.remote_id, self.sent = None, None
            self.recreated = True
            self._create(body, label="c")

    def _deactivate_unknown(self, body: dict) -> None:
        """Deactivate an account this connector has no id for: only one that matches."""
        found = self._match(body, every_key=True)
        if found is not None:
            self.remote_id = found["id"]
            self._bring(body, base=_without(found, NOT_SENT), removes=False, label="m")

    def _bring(self, body: dict, base: dict | None, removes: bool, label: str) -> None:
        """Make the remote resource match ``body``, relative to ``base`` (what it holds)."""
        if self.kind == "group" and not self.connector.patch_supported():
            self._put_group(body, label)
        elif not self.connector.patch_supported() or (base is None and self.kind == "user"):
            self._write("PUT", self._path(), label, self._resource(body, with_id=True))
        else:
            ops = diff(base or {}, body, removes=removes and base is not None)
            if ops:
                self._patch(ops, label)
        self.sent = body

    def _delete(self) -> None:
        if self.remote_id is None:
            # a create whose answer never arrived: the account may be there all the same
            maybe = self.change.state.get("maybe") or {}
            found = self._match(maybe.get("match") or {}, every_key=True)
            if found is None:
                return
            self.remote_id = found["id"]
        self._write("DELETE", self._path(), "", None, allow=frozenset({404}))

    # --- members --------------------------------------------------------------------------
    def _members(self, body: dict) -> None:
        added, removed = self.added, self.removed
        if self.members_done or (not added and not removed):
            return
        if not self.connector.patch_supported():
            self._put_group(body, "members")
            return
        try:
            for n, start in enumerate(range(0, len(added), MEMBER_BATCH)):
                batch = added[start : start + MEMBER_BATCH]
                value = [{"value": ref} for ref in batch]
                self._patch([{"op": "add", "path": "members", "value": value}], f"a{n}")
            for n, start in enumerate(range(0, len(removed), MEMBER_BATCH)):
                self._remove_members(removed[start : start + MEMBER_BATCH], f"r{n}")
        except TargetError as exc:
            if exc.status != 404 or self.recreated:
                raise
            # the group is gone there: create it again, with this change's additions
            log.info("group %s is gone from the target: creating it again", self.remote_id)
            self.remote_id, self.sent, self.recreated = None, None, True
            self._create(body, label="c")
            self.removed = []
            self._members(body)

    def _remove_members(self, refs: list[str], label: str) -> None:
        """Remove members; one the group no longer lists (``noTarget``, RFC 7644 §3.12: a
        user the target deleted) is already where it should be. A PATCH is atomic
        (§3.5.2), so when one of a batch is gone the rest are removed one by one."""
        try:
            self._patch([_member_removal(r) for r in refs], label)
        except TargetError as exc:
            if not _no_target(exc):
                raise
            for n, ref in enumerate(refs if len(refs) > 1 else ()):
                try:
                    self._patch([_member_removal(ref)], f"{label}_{n}")
                except TargetError as one:
                    if not _no_target(one):
                        raise

    def _refs(self, ids: list[str]) -> list[str]:
        """Our user ids as the target's; a user the target never got a remote id for is
        skipped (the engine adds only users present there; a removed one may be gone)."""
        refs = []
        for uid in ids:
            ref = self.change.member_refs.get(uid)
            if ref:
                refs.append(ref)
            else:
                self.skipped.append(uid)
                log.info(
                    "group %s: member %s has no id on the target, skipped", self.change.id, uid
                )
        return refs

    def _put_group(self, body: dict, label: str) -> None:
        """Without PATCH: read the group's members, then PUT it with the new list."""
        response = self._read(self._path())
        current = [
            m["value"]
            for m in _json(response, f"SCIM GET {self._path()}").get("members") or []
            if isinstance(m, dict) and isinstance(m.get("value"), str)
        ]
        drop = set(self.removed)
        members = [m for m in current if m not in drop]
        members += [m for m in self.added if m not in members]
        resource = self._resource(body, with_id=True)
        resource["members"] = [{"value": m} for m in members]
        self._write("PUT", self._path(), label, resource)
        self.members_done = True

    # --- matching -------------------------------------------------------------------------
    def _match(self, body: dict, every_key: bool) -> dict | None:
        """The target's account with the same key as ``body``: the first key present, or
        each in turn when ``every_key``. TargetError when several accounts match."""
        for attr in MATCH_KEYS[self.kind]:
            value = body.get(attr)
            if not isinstance(value, str) or not value:
                continue
            found = self._find(attr, value)
            if found is not None or not every_key:
                return found
        return None

    def _find(self, attr: str, value: str) -> dict | None:
        text = f"{attr} eq {_quote(value)}"
        what = f"SCIM GET {self.endpoint}?filter={text}"
        response = self._read(self.endpoint, {"filter": text})
        listed = _json(response, what).get("Resources") or []
        if not isinstance(listed, list):
            raise _garbage(what, "Resources is not a list")
        # a target that ignores the filter would list everyone: check each answer
        same = [r for r in listed if isinstance(r, dict) and _same(r, attr, value)]
        if len(same) > 1:
            raise TargetError(f"{what}: {len(same)} accounts match", retryable=False)
        if not same:
            return None
        if not isinstance(same[0].get("id"), str) or not same[0]["id"]:
            raise _garbage(what, "the matching resource has no id")
        return same[0]

    # --- HTTP -----------------------------------------------------------------------------
    def _path(self) -> str:
        return f"{self.endpoint}/{quote(str(self.remote_id), safe='')}"

    def _resource(self, body: dict, with_id: bool = False) -> dict:
        schemas = [CORE_SCHEMA[self.kind]] + [k for k in body if k.lower().startswith("urn:")]
        resource = {"schemas": schemas, **body}
        if with_id:
            resource["id"] = self.remote_id
        return resource

    def _patch(self, ops: list[dict], label: str) -> None:
        self._write("PATCH", self._path(), label, {"schemas": [PATCH_OP], "Operations": ops})

    def _read(self, path: str, params: dict | None = None) -> httpx.Response:
        return self.connector.request("GET", path, key=self.change.idempotency_key, params=params)

    def _write(
        self,
        method: str,
        path: str,
        label: str,
        body: dict | None,
        allow: frozenset[int] = frozenset(),
    ) -> httpx.Response:
        key = self.change.idempotency_key + (f"_{label}" if label else "")
        response = self.connector.request(method, path, key=key, body=body, allow=allow)
        self.status = response.status_code
        return response


def diff(old: dict, new: dict, *, removes: bool = True) -> list[dict]:
    """PATCH operations (RFC 7644 §3.5.2) turning ``old`` into ``new``.

    Complex attributes and extension objects are compared one level down, since a
    ``replace`` of a complex attribute leaves the sub-attributes it omits unchanged
    (§3.5.2.3); multi-valued attributes are replaced whole.
    """
    return _diff(old, new, "", removes, nested=True)


def _diff(old: dict, new: dict, prefix: str, removes: bool, nested: bool) -> list[dict]:
    ops: list[dict] = []
    for key, value in new.items():
        before = old.get(key)
        if before == value:
            continue
        path = prefix + key
        urn = nested and not prefix and key.lower().startswith("urn:")
        if urn and isinstance(value, dict):
            base = before if isinstance(before, dict) else {}
            ops += _diff(base, value, path + ":", removes, nested=True)
        elif nested and isinstance(value, dict) and isinstance(before, dict):
            ops += _diff(before, value, path + ".", removes, nested=False)
        else:
            ops.append({"op": "replace", "path": path, "value": value})
    if removes:
        for key, before in old.items():
            if key in new:
                continue
            path = prefix + key
            if not prefix and key.lower().startswith("urn:") and isinstance(before, dict):
                ops += [{"op": "remove", "path": f"{path}:{k}"} for k in before]
            else:
                ops.append({"op": "remove", "path": path})
    return ops


def _member_removal(ref: str) -> dict:
    return {"op": "remove", "path": f"members[value eq {_quote(ref)}]"}


def _no_target(exc: TargetError) -> bool:
    """Whether a target refused a PATCH because its path matched nothing (§3.12 noTarget)."""
    return exc.status == 400 and "notarget" in str(exc).lower()


def _patch_flag(response: httpx.Response) -> bool:
    """``patch.supported`` from a ``/ServiceProviderConfig`` answer; True when unsaid."""
    if not response.is_success:
        return True
    try:
        body = response.json()
    except ValueError:
        log.warning("unreadable /ServiceProviderConfig at %s: assuming PATCH", response.url)
        return True
    patch = body.get("patch") if isinstance(body, dict) else None
    supported = patch.get("supported") if isinstance(patch, dict) else None
    return not (supported is False or str(supported).lower() == "false")


def _json(response: httpx.Response, what: str) -> dict:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise _garbage(what, f"HTTP {response.status_code} without a JSON object")
    return body


def _resource_id(response: httpx.Response, what: str) -> str:
    """The created resource's id: from the body, or the ``Location`` header (§3.3)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    rid = body.get("id") if isinstance(body, dict) else None
    if isinstance(rid, str) and rid:
        return rid
    location = response.headers.get("Location", "").rstrip("/")
    if "/" in location:
        return location.rsplit("/", 1)[1]
    raise _garbage(what, f"HTTP {response.status_code} without the new resource's id")


def _garbage(what: str, detail: str) -> TargetError:
    return TargetError(f"{what}: unexpected answer from the target: {detail}", retryable=False)


def _quote(value: str) -> str:
    """A filter ``compValue`` string (RFC 7644 §3.4.2.2: JSON rules, quotes escaped)."""
    return json.dumps(value, ensure_ascii=False)


def _same(resource: dict, attr: str, value: str) -> bool:
    found = next((v for k, v in resource.items() if k.lower() == attr.lower()), None)
    if not isinstance(found, str):
        return False
    return found == value if attr in CASE_EXACT else found.casefold() == value.casefold()


def _without(resource: dict, keys: frozenset[str]) -> dict:
    return {k: v for k, v in resource.items() if k not in keys}


def _keys_text(kind: str, body: dict) -> str:
    keys = [f"{a} {body[a]!r}" for a in MATCH_KEYS[kind] if body.get(a)]
    return ", ".join(keys) or "(no matching attribute in the payload)"
