"""Heals: SCIM writes through :class:`~bridge.scim.service.ResourceService`, so each is
stored and announced on the change stream like a push from Entra and reaches every
target the same way. :class:`DryRunWrites` writes nothing and answers as if it had."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from bridge import errors
from bridge.directory.records import Directory
from bridge.graph.report import Progress
from bridge.scim.patch import PATCH_OP_URN
from bridge.scim.resource_types import ResourceType
from bridge.scim.service import ResourceService

DRY_RUN_ID = "dry-run:"
"""Prefix of the ids a dry run pretends to create (followed by the Graph id)."""

T = TypeVar("T")


def patch_body(*ops: dict[str, Any]) -> dict[str, Any]:
    """A PatchOp request (RFC 7644 §3.5.2)."""
    return {"schemas": [PATCH_OP_URN], "Operations": list(ops)}


class Writes:
    """Creates, patches, disables and deletes; a failure becomes an error of that object in
    the run's report, never the end of the run."""

    def __init__(
        self, directory: Directory, resource_types: dict[str, ResourceType], progress: Progress
    ) -> None:
        self.services = {
            "user": ResourceService(directory, resource_types["User"]),
            "group": ResourceService(directory, resource_types["Group"]),
        }
        self.progress = progress

    def create(self, kind: str, graph_id: str, body: dict[str, Any]) -> str | None:
        """Create the resource standing for Graph object ``graph_id``; its bridge id."""
        created = self._write(f"{kind} {graph_id}", lambda: self.services[kind].create(body))
        return created.record.id if created and created.record else None

    def patch(self, kind: str, rid: str, *ops: dict[str, Any]) -> None:
        """Apply PATCH operations to one resource."""
        self._write(f"{kind} {rid}", lambda: self.services[kind].patch(rid, patch_body(*ops), None))

    def change_members(self, rid: str, add: set[str], remove: set[str]) -> None:
        """Add and remove members (bridge ids) of one group."""
        ops = [
            {"op": op, "path": "members", "value": [{"value": m} for m in sorted(ids)]}
            for op, ids in (("add", add), ("remove", remove))
            if ids
        ]
        self.patch("group", rid, *ops)

    def disable_user(self, rid: str) -> None:
        """``active: false``: the user left Entra's scope."""
        self.patch("user", rid, {"op": "replace", "path": "active", "value": False})

    def delete_group(self, rid: str) -> None:
        """The group left Entra's scope."""
        self._write(f"group {rid}", lambda: self.services["group"].delete(rid, None))

    def pretended(self, rid: str) -> bool:
        """Whether ``rid`` stands for a resource this run only pretended to create."""
        return False

    def _write(self, label: str, action: Callable[[], T]) -> T | None:
        try:
            return action()
        except errors.NotFound:
            return None
        except errors.BridgeError as exc:
            self.progress.error(f"{type(exc).__name__}: {label}: {exc.message}")
            return None


class DryRunWrites(Writes):
    """Writes nothing. A create answers with a made-up id, so the rest of the run (links,
    memberships) goes on as the real run would and reports the same drift."""

    def create(self, kind: str, graph_id: str, body: dict[str, Any]) -> str | None:
        """The id the resource would get, made up."""
        return f"{DRY_RUN_ID}{graph_id}"

    def patch(self, kind: str, rid: str, *ops: dict[str, Any]) -> None:
        """Nothing."""

    def delete_group(self, rid: str) -> None:
        """Nothing."""

    def pretended(self, rid: str) -> bool:
        """Whether ``rid`` is one of this run's made-up ids."""
        return rid.startswith(DRY_RUN_ID)
