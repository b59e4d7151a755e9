"""RFC 7644 §3.7: ``POST /Bulk``, many operations in one request, each applied on its own.

Every operation goes through :class:`ResourceService` as the single-resource endpoints do,
so each one is atomic and a failure never leaves a half-written record. A POST's
``bulkId`` may be referenced as ``"bulkId:<id>"`` by other operations (§3.7.2); those
POSTs are run first, whatever their place in the request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from flask import Response, current_app

from bridge.errors import BridgeError
from bridge.scim import current, errors, urns
from bridge.scim.http import json_body, parse_etag, scim_response
from bridge.scim.resource_types import ResourceType
from bridge.scim.service import ResourceService

BULK_REQUEST = urns.BULK_REQUEST
BULK_RESPONSE = urns.BULK_RESPONSE
Method = Literal["POST", "PUT", "PATCH", "DELETE"]
"""The HTTP methods a bulk operation may carry (RFC 7644 §3.7)."""

METHODS: tuple[Method, ...] = ("POST", "PUT", "PATCH", "DELETE")
REFERENCE_PREFIX = "bulkId:"
"""A string value that is exactly ``bulkId:<id>`` names the resource that POST created."""


log = logging.getLogger(__name__)


class CircularReference(errors.Conflict):
    """§3.7.1: operations whose bulkId references form a cycle fail with 409; the
    references are values that cannot be resolved, hence ``invalidValue``."""

    scim_type = "invalidValue"


@dataclass
class Operation:
    """One validated entry of ``Operations``."""

    method: Method
    rtype: ResourceType
    rid: str | None
    bulk_id: str | None
    version: int | None
    data: Any


def bulk() -> Response:
    """§3.7: run the operations in order (referenced POSTs first); report each one's outcome
    in request order, up to where ``failOnErrors`` stopped processing."""
    body = json_body()
    raw_ops, fail_on_errors = _parse_request(body)
    limit = current_app.config["BRIDGE_SETTINGS"].bulk_max_operations
    if len(raw_ops) > limit:
        raise errors.PayloadTooLarge(
            f"the bulk request has {len(raw_ops)} operations; maxOperations is {limit}"
        )
    posts, duplicates = _posts(raw_ops)
    refs = [_references(op) for op in raw_ops]
    deps = [[posts[r] for r in op_refs if r in posts] for op_refs in refs]
    order, circular = _order(deps)
    base_url = current.base_url()
    created: dict[str, str] = {}  # bulkId -> id, for each POST that succeeded
    results: dict[int, dict[str, Any]] = {}
    failures = 0
    for index in order:
        raw = raw_ops[index]
        try:
            if index in duplicates:
                raise errors.InvalidValue(f"bulkId '{_bulk_id(raw)}' is used by another POST")
            if index in circular:
                raise CircularReference("the operation's bulkId references form a cycle")
            op = _parse_operation(raw, current.services().resource_types, posts, created)
        except BridgeError as exc:
            results[index] = _failure(raw, None, errors.from_domain(exc), base_url)
        else:
            results[index] = _run(current.resource_service(op.rtype.id), op, base_url, created)
        failures += "response" in results[index]
        if fail_on_errors is not None and failures >= fail_on_errors:
            break
    return scim_response(
        {"schemas": [BULK_RESPONSE], "Operations": [results[i] for i in sorted(results)]}
    )


# --- request ---------------------------------------------------------------------------
def _field(obj: dict[str, Any], name: str) -> Any:
    """A message attribute by name; attribute names are case-insensitive (RFC 7643 §2.1)."""
    if name in obj:
        return obj[name]
    lower = name.lower()
    return next((v for k, v in obj.items() if k.lower() == lower), None)


def _parse_request(body: object) -> tuple[list[Any], int | None]:
    if not isinstance(body, dict):
        raise errors.InvalidSyntax("a BulkRequest must be a JSON object")
    if BULK_REQUEST not in (_field(body, "schemas") or []):
        raise errors.InvalidValue(f"schemas must include {BULK_REQUEST}")
    operations = _field(body, "Operations")
    if not isinstance(operations, list):
        raise errors.InvalidValue("Operations must be a list")
    fail_on_errors = _field(body, "failOnErrors")
    if fail_on_errors is not None and (
        not isinstance(fail_on_errors, int)
        or isinstance(fail_on_errors, bool)
        or fail_on_errors < 1
    ):
        raise errors.InvalidValue("failOnErrors must be an integer of at least 1")
    return operations, fail_on_errors


def _bulk_id(raw: object) -> str | None:
    value = _field(raw, "bulkId") if isinstance(raw, dict) else None
    return value if isinstance(value, str) and value else None


def _method(raw: object) -> Method | None:
    value = _field(raw, "method") if isinstance(raw, dict) else None
    return next((m for m in METHODS if isinstance(value, str) and value.upper() == m), None)


def _posts(raw_ops: list[Any]) -> tuple[dict[str, int], set[int]]:
    """Each POST's bulkId and its index; later POSTs reusing a bulkId are duplicates."""
    posts: dict[str, int] = {}
    duplicates: set[int] = set()
    for index, raw in enumerate(raw_ops):
        bulk_id = _bulk_id(raw)
        if bulk_id is None or _method(raw) != "POST":
            continue
        if bulk_id in posts:
            duplicates.add(index)
        else:
            posts[bulk_id] = index
    return posts, duplicates


def _references(raw: object) -> list[str]:
    """The bulkIds an operation refers to, in its path and anywhere in its data."""
    if not isinstance(raw, dict):
        return []
    found: list[str] = []
    path = _field(raw, "path")
    if isinstance(path, str):
        _, _, rid = path.strip("/").partition("/")
        _collect(rid, found)
    _collect(_field(raw, "data"), found)
    return found


def _collect(value: Any, found: list[str]) -> None:
    if isinstance(value, str):
        if value.startswith(REFERENCE_PREFIX) and len(value) > len(REFERENCE_PREFIX):
            found.append(value[len(REFERENCE_PREFIX) :])
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, found)
    elif isinstance(value, list):
        for item in value:
            _collect(item, found)


def _order(deps: list[list[int]]) -> tuple[list[int], set[int]]:
    """Request order, except that a referenced POST runs before its first referrer.

    Depth-first without recursion (a chain may be maxOperations long); the operations on
    a cycle are returned as ``circular``.
    """
    order: list[int] = []
    circular: set[int] = set()
    state = [0] * len(deps)  # 0 unseen, 1 on the current path, 2 ordered
    for root in range(len(deps)):
        if state[root]:
            continue
        path, pending = [root], [iter(deps[root])]
        state[root] = 1
        while path:
            for dep in pending[-1]:
                if state[dep] == 0:
                    state[dep] = 1
                    path.append(dep)
                    pending.append(iter(deps[dep]))
                    break
                if state[dep] == 1:
                    circular.update(path[path.index(dep) :])
            else:
                done = path.pop()
                pending.pop()
                state[done] = 2
                order.append(done)
    return order, circular


def _parse_operation(
    raw: object,
    rtypes: dict[str, ResourceType],
    posts: dict[str, int],
    created: dict[str, str],
) -> Operation:
    if not isinstance(raw, dict):
        raise errors.InvalidSyntax("each operation must be a JSON object")
    method = _method(raw)
    if method is None:
        raise errors.InvalidValue(f"method must be one of {', '.join(METHODS)}")
    path = _field(raw, "path")
    if not isinstance(path, str):
        raise errors.InvalidValue("path is required")
    endpoint, _, rid = path.strip().strip("/").partition("/")
    rtype = next((t for t in rtypes.values() if t.endpoint == f"/{endpoint}"), None)
    if rtype is None or "/" in rid:
        raise errors.NotFound(f"no resource endpoint at {path}")
    if (method == "POST") == bool(rid):
        where = "a resource endpoint" if method == "POST" else "a resource"
        raise errors.MethodNotAllowed(f"{method} must address {where}, not {path}")
    bulk_id = _bulk_id(raw)
    if method == "POST" and bulk_id is None:
        raise errors.InvalidValue("bulkId is required for POST")
    data = _field(raw, "data")
    if method != "DELETE" and data is None:
        raise errors.InvalidSyntax(f"{method} requires data")
    return Operation(
        method=method,
        rtype=rtype,
        rid=_resolve(rid, posts, created) if rid else None,
        bulk_id=bulk_id,
        version=_version(_field(raw, "version")) if method != "POST" else None,
        data=_resolve(data, posts, created),
    )


def _resolve(value: Any, posts: dict[str, int], created: dict[str, str]) -> Any:
    """``value`` with each ``"bulkId:<id>"`` replaced by the id that POST created (§3.7.2)."""
    if isinstance(value, dict):
        return {k: _resolve(v, posts, created) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, posts, created) for v in value]
    if not isinstance(value, str) or not value.startswith(REFERENCE_PREFIX):
        return value
    bulk_id = value[len(REFERENCE_PREFIX) :]
    if not bulk_id:
        return value
    if bulk_id not in posts:
        raise errors.InvalidValue(f"no POST in this request has bulkId '{bulk_id}'")
    rid = created.get(bulk_id)
    if rid is None:
        raise errors.InvalidValue(f"the POST with bulkId '{bulk_id}' did not create a resource")
    return rid


def _version(value: object) -> int | None:
    """An operation's ``version`` works as an If-Match header (RFC 7644 §3.14)."""
    return parse_etag(value, "version")


# --- running ---------------------------------------------------------------------------
def _run(
    service: ResourceService, op: Operation, base_url: str, created: dict[str, str]
) -> dict[str, Any]:
    """Apply one operation; a SCIM error becomes that operation's response."""
    try:
        status, rid, etag = _apply(service, op)
    except BridgeError as exc:
        return _failure(None, op, errors.from_domain(exc), base_url)
    except Exception:  # noqa: BLE001 - one operation's bug must not lose the others' results
        log.exception("bulk %s %s failed", op.method, op.rtype.endpoint)
        return _failure(None, op, errors.ScimError("internal error; see the log"), base_url)
    if op.method == "POST" and op.bulk_id is not None:
        created[op.bulk_id] = rid
    result = _outcome(op, base_url, rid)
    result["status"] = str(status)
    if etag is not None:
        result["version"] = etag
    return result


def _apply(service: ResourceService, op: Operation) -> tuple[int, str, str | None]:
    """(status, id, ETag) of a successful operation."""
    if op.method == "POST":
        record = service.create(op.data).record
        assert record is not None  # a create always answers the stored record
        return 201, record.id, record.etag
    assert op.rid is not None
    if op.method == "PUT":
        return 200, op.rid, service.replace(op.rid, op.data, op.version).etag
    if op.method == "PATCH":
        outcome = service.patch(op.rid, op.data, op.version)
        etag = outcome.etag
        return 200, op.rid, etag
    service.delete(op.rid, op.version)
    return 204, op.rid, None


def _outcome(op: Operation | None, base_url: str, rid: str | None) -> dict[str, Any]:
    result: dict[str, Any] = {"method": op.method if op else None}
    if op is not None and op.bulk_id is not None:
        result["bulkId"] = op.bulk_id
    if op is not None and rid is not None:
        result["location"] = f"{base_url}{op.rtype.endpoint}/{rid}"
    return result


def _failure(
    raw: object, op: Operation | None, exc: errors.ScimError, base_url: str
) -> dict[str, Any]:
    """§3.7.3: a failed operation carries the SCIM error as its ``response``."""
    result = _outcome(op, base_url, op.rid if op else None)
    if op is None:
        method = _field(raw, "method") if isinstance(raw, dict) else None
        result["method"] = method.upper() if isinstance(method, str) else method
        if _bulk_id(raw) is not None:
            result["bulkId"] = _bulk_id(raw)
    if result["method"] is None:
        del result["method"]
    result["status"] = str(exc.status)
    result["response"] = exc.to_scim()
    return result
