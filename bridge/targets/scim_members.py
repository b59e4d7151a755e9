"""A SCIM group's members at the target: added and removed in PATCH batches, or PUT back.

Members are added in one PATCH per MEMBER_BATCH and removed with ``members[value eq
"id"]`` paths (RFC 7644 §3.5.2.2); where PATCH is unsupported, the group is read and PUT
back with its new member list.
"""

from __future__ import annotations

import logging

from bridge.targets.base import Change, TargetError
from bridge.targets.scim_http import ChangeCalls, JsonObject, ScimHttp, filter_value, json_object

log = logging.getLogger(__name__)

MEMBER_BATCH = 100
"""Members added, or remove operations, per PATCH request."""


class MemberCalls(ChangeCalls):
    """One change's member writes; members are named by the target's ids for them."""

    def __init__(self, connector: ScimHttp, change: Change) -> None:
        super().__init__(connector, change)
        self.members_done = False
        self.skipped: list[str] = []
        self.added = self.refs(change.members_added)
        self.removed = self.refs(change.members_removed)

    def patch_members(self) -> None:
        """Add, then remove, this change's members, MEMBER_BATCH per PATCH."""
        added, removed = self.added, self.removed
        for n, start in enumerate(range(0, len(added), MEMBER_BATCH)):
            batch = added[start : start + MEMBER_BATCH]
            value = [{"value": ref} for ref in batch]
            self.patch([{"op": "add", "path": "members", "value": value}], f"a{n}")
        for n, start in enumerate(range(0, len(removed), MEMBER_BATCH)):
            self.remove_members(removed[start : start + MEMBER_BATCH], f"r{n}")

    def remove_members(self, refs: list[str], label: str) -> None:
        """Remove members; one the group no longer lists (``noTarget``, RFC 7644 §3.12: a
        user the target deleted) is already where it should be. A PATCH is atomic
        (§3.5.2), so when one of a batch is gone the rest are removed one by one."""
        try:
            self.patch([_member_removal(r) for r in refs], label)
        except TargetError as exc:
            if not _no_target(exc):
                raise
            for n, ref in enumerate(refs if len(refs) > 1 else ()):
                try:
                    self.patch([_member_removal(ref)], f"{label}_{n}")
                except TargetError as one:
                    if not _no_target(one):
                        raise

    def refs(self, ids: list[str]) -> list[str]:
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

    def put_group(self, body: JsonObject, label: str) -> None:
        """Without PATCH: read the group's members, then PUT it with the new list."""
        response = self.read(self.path())
        current = [
            m["value"]
            for m in json_object(response, f"SCIM GET {self.path()}").get("members") or []
            if isinstance(m, dict) and isinstance(m.get("value"), str)
        ]
        drop = set(self.removed)
        members = [m for m in current if m not in drop]
        members += [m for m in self.added if m not in members]
        resource = self.resource(body, with_id=True)
        resource["members"] = [{"value": m} for m in members]
        self.write("PUT", self.path(), label, resource)
        self.members_done = True


def _member_removal(ref: str) -> JsonObject:
    return {"op": "remove", "path": f"members[value eq {filter_value(ref)}]"}


def _no_target(exc: TargetError) -> bool:
    """Whether a target refused a PATCH because its path matched nothing (§3.12 noTarget)."""
    return exc.status == 400 and "notarget" in str(exc).lower()
