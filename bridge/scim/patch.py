"""PATCH requests (RFC 7644 §3.5.2): validate a PatchOp body into normalised operations.

A request goes through three steps: :func:`parse_operations` (here) checks the body and
yields :class:`PatchOperation` dicts; :func:`bridge.scim.patch_members.split_member_operations`
folds the ones on a group's ``members``, which live outside the document; and
:func:`bridge.scim.patch_apply.apply_operations` applies the rest to the stored resource.
Microsoft Entra ID's dialect is accepted throughout: capitalised ``op`` values, string
booleans, the manager as a bare id, ``remove`` of members listed in ``value``, and
value-filtered paths that name an element which does not exist yet.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

from bridge.scim import errors, urns
from bridge.scim.paths import find_key

PATCH_OP_URN = urns.PATCH_OP

PatchOpName = Literal["add", "remove", "replace"]
"""The ``op`` values of RFC 7644 §3.5.2, in the lower case this module normalises to."""

OPERATIONS: dict[str, PatchOpName] = {"add": "add", "remove": "remove", "replace": "replace"}
"""Each ``op`` by its case-folded spelling: compared case-insensitively (Entra sends "Add")."""

MAX_PATCH_OPERATIONS = 1000
"""Most operations one PATCH request may carry, as many as a /Bulk request; a client with
more sends several requests. More is answered 400 invalidValue (RFC 7644 §3.12)."""

_MISSING = object()


class PatchOperation(TypedDict):
    """One validated operation: ``op`` lower-case, ``path`` stripped and non-empty if
    present, ``value`` present unless a ``remove`` came without one."""

    op: PatchOpName
    path: NotRequired[str]
    value: NotRequired[Any]


def parse_operations(body: object) -> list[PatchOperation]:
    """Validate a PatchOp request (RFC 7644 §3.5.2); return its normalised operations."""
    if not isinstance(body, dict):
        raise errors.InvalidSyntax("the PATCH body must be a JSON object")
    schemas = _lookup(body, "schemas", None)
    if not isinstance(schemas, list) or not any(
        isinstance(s, str) and s.casefold() == PATCH_OP_URN.casefold() for s in schemas
    ):
        raise errors.InvalidSyntax(f"schemas must contain {PATCH_OP_URN}")
    operations = _lookup(body, "Operations", None)
    if not isinstance(operations, list) or not operations:
        raise errors.InvalidSyntax("Operations must be a non-empty list")
    if len(operations) > MAX_PATCH_OPERATIONS:
        raise errors.InvalidValue(
            f"the request has {len(operations)} operations; at most {MAX_PATCH_OPERATIONS}"
        )
    return [_parse_operation(i, raw) for i, raw in enumerate(operations)]


def _parse_operation(index: int, raw: object) -> PatchOperation:
    if not isinstance(raw, dict):
        raise errors.InvalidSyntax(f"Operations[{index}] must be an object")
    name = _lookup(raw, "op", None)
    kind = OPERATIONS.get(name.casefold()) if isinstance(name, str) else None
    if kind is None:
        raise errors.InvalidSyntax(f"Operations[{index}].op must be add, remove or replace")
    op: PatchOperation = {"op": kind}
    path = _lookup(raw, "path", None)
    if path is not None and not isinstance(path, str):
        raise errors.InvalidSyntax(f"Operations[{index}].path must be a string")
    if path and path.strip():
        op["path"] = path.strip()
    value = _lookup(raw, "value", _MISSING)
    if kind == "remove":
        if "path" not in op:
            raise errors.NoTarget(f"Operations[{index}]: remove needs a path (RFC 7644 §3.5.2.2)")
        if value is not _MISSING and value is not None:
            op["value"] = value
        return op
    # RFC 7643 §2.5: null means unassigned, so "replace" with null clears the target.
    if value is _MISSING or (value is None and (kind == "add" or "path" not in op)):
        raise errors.InvalidValue(f"Operations[{index}]: {kind} needs a value")
    op["value"] = value
    return op


def _lookup(mapping: dict[str, Any], name: str, default: object) -> Any:
    """A message attribute by name, whatever its case (RFC 7643 §2.1)."""
    key = find_key(mapping, name)
    return default if key is None else mapping[key]
