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
different requests of one change share a key. The HTTP side is
:mod:`bridge.targets.scim_http`'s, the members' :mod:`bridge.targets.scim_members`'.
"""

from __future__ import annotations

import logging
from typing import Any

from bridge.directory.stored import Kind
from bridge.targets.base import Applied, Change, TargetError
from bridge.targets.scim_http import (
    JsonObject,
    ScimHttp,
    filter_value,
    garbage,
    json_object,
    resource_id,
)
from bridge.targets.scim_members import MemberCalls

log = logging.getLogger(__name__)

MATCH_KEYS: dict[Kind, tuple[str, str]] = {
    "user": ("userName", "externalId"),
    "group": ("displayName", "externalId"),
}
"""Attributes that identify an account on first contact, in order of preference."""

CASE_EXACT = frozenset({"externalId"})
"""Match keys compared case-sensitively (RFC 7643 §4.1, §3.1: the others are caseExact false)."""

NOT_SENT = frozenset({"schemas", "id", "meta", "members", "groups"})
"""Payload keys never written as attributes: set by the connector, the target, or apart."""


class ScimConnector(ScimHttp):
    """Writes changes to a SCIM 2.0 service provider at ``base_url`` (ending in ``/v2``)."""

    def apply(self, change: Change) -> Applied:
        """Bring the target's copy of one resource in line with ``change``."""
        return _Delivery(self, change).run()


class _Delivery(MemberCalls):
    """One change applied: the calls it makes and what the target holds afterwards."""

    def __init__(self, connector: ScimHttp, change: Change) -> None:
        self.recreated = False
        super().__init__(connector, change)

    def run(self) -> Applied:
        """Make the calls the change needs; what the target holds goes in ``remember``."""
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
    def _body(self, payload: JsonObject) -> JsonObject:
        """The attributes to write: the payload minus managed keys; users get ``active``."""
        body = {k: v for k, v in payload.items() if k not in NOT_SENT}
        if self.kind == "user":
            body["active"] = self.change.action != "deactivate"
        return body

    def _create(self, body: JsonObject, label: str = "") -> None:
        found = self._match(body, every_key=False)
        if found is None:
            response = self.write(
                "POST", self.endpoint, label, self.resource(body), allow=frozenset({409})
            )
            if response.status_code != 409:
                self.remote_id = resource_id(response, f"SCIM POST {self.endpoint}")
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

    def _update(self, body: JsonObject) -> None:
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

    def _deactivate_unknown(self, body: JsonObject) -> None:
        """Deactivate an account this connector has no id for: only one that matches."""
        found = self._match(body, every_key=True)
        if found is not None:
            self.remote_id = found["id"]
            self._bring(body, base=_without(found, NOT_SENT), removes=False, label="m")

    def _bring(self, body: JsonObject, base: JsonObject | None, removes: bool, label: str) -> None:
        """Make the remote resource match ``body``, relative to ``base`` (what it holds)."""
        if self.kind == "group" and not self.connector.patch_supported():
            self.put_group(body, label)
        elif not self.connector.patch_supported() or (base is None and self.kind == "user"):
            self.write("PUT", self.path(), label, self.resource(body, with_id=True))
        else:
            ops = diff(base or {}, body, removes=removes and base is not None)
            if ops:
                self.patch(ops, label)
        self.sent = body

    def _delete(self) -> None:
        if self.remote_id is None:
            # a create whose answer never arrived: the account may be there all the same
            maybe = self.change.state.get("maybe") or {}
            found = self._match(maybe.get("match") or {}, every_key=True)
            if found is None:
                return
            self.remote_id = found["id"]
        self.write("DELETE", self.path(), "", None, allow=frozenset({404}))

    # --- members --------------------------------------------------------------------------
    def _members(self, body: JsonObject) -> None:
        if self.members_done or (not self.added and not self.removed):
            return
        if not self.connector.patch_supported():
            self.put_group(body, "members")
            return
        try:
            self.patch_members()
        except TargetError as exc:
            if exc.status != 404 or self.recreated:
                raise
            # the group is gone there: create it again, with this change's additions
            log.info("group %s is gone from the target: creating it again", self.remote_id)
            self.remote_id, self.sent, self.recreated = None, None, True
            self._create(body, label="c")
            self.removed = []
            self._members(body)

    # --- matching -------------------------------------------------------------------------
    def _match(self, body: JsonObject, every_key: bool) -> JsonObject | None:
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

    def _find(self, attr: str, value: str) -> JsonObject | None:
        text = f"{attr} eq {filter_value(value)}"
        what = f"SCIM GET {self.endpoint}?filter={text}"
        response = self.read(self.endpoint, {"filter": text})
        listed = json_object(response, what).get("Resources") or []
        if not isinstance(listed, list):
            raise garbage(what, "Resources is not a list")
        # a target that ignores the filter would list everyone: check each answer
        same = [r for r in listed if isinstance(r, dict) and _same(r, attr, value)]
        if len(same) > 1:
            raise TargetError(f"{what}: {len(same)} accounts match", retryable=False)
        if not same:
            return None
        if not isinstance(same[0].get("id"), str) or not same[0]["id"]:
            raise garbage(what, "the matching resource has no id")
        return same[0]


def diff(old: JsonObject, new: JsonObject, *, removes: bool = True) -> list[JsonObject]:
    """PATCH operations (RFC 7644 §3.5.2) turning ``old`` into ``new``.

    Complex attributes and extension objects are compared one level down, since a
    ``replace`` of a complex attribute leaves the sub-attributes it omits unchanged
    (§3.5.2.3); multi-valued attributes are replaced whole.
    """
    return _diff(old, new, "", removes, nested=True)


def _diff(
    old: JsonObject, new: JsonObject, prefix: str, removes: bool, nested: bool
) -> list[JsonObject]:
    ops: list[JsonObject] = []
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


def _same(resource: JsonObject, attr: str, value: str) -> bool:
    found = next((v for k, v in resource.items() if k.lower() == attr.lower()), None)
    if not isinstance(found, str):
        return False
    return found == value if attr in CASE_EXACT else found.casefold() == value.casefold()


def _without(resource: JsonObject, keys: frozenset[str]) -> JsonObject:
    return {k: v for k, v in resource.items() if k not in keys}


def _keys_text(kind: Kind, body: JsonObject) -> str:
    keys = [f"{a} {body[a]!r}" for a in MATCH_KEYS[kind] if body.get(a)]
    return ", ".join(keys) or "(no matching attribute in the payload)"
