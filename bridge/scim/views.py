"""The /scim/v2 blueprint: Users, Groups, /.search, discovery (RFC 7644 §3–4)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Request, Response, current_app, g, request
from flask.views import MethodView
from marshmallow import ValidationError

from bridge.directory.stored import Record
from bridge.directory.tokens import digest
from bridge.runtime.services import EXTENSION_KEY
from bridge.scim import backpressure, bulk, discovery, errors, query, urns
from bridge.scim.current import base_url, resource_service, services
from bridge.scim.http import (
    bearer_token,
    if_match,
    if_none_match,
    json_body,
    scim_response,
)
from bridge.scim.render import Projection, parse_projection, render
from bridge.scim.resource_types import ResourceType
from bridge.scim.service import ResourceService
from bridge.web.ratelimit import retry_after
from schemas.scim import LIST_QUERY, load_list_query

LIST_RESPONSE = urns.LIST_RESPONSE
SEARCH_REQUEST = urns.SEARCH_REQUEST

blp = Blueprint("scim", __name__, url_prefix="/scim/v2")


WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
"""Methods that change the directory, except POST to ``/.search``, which only reads."""


@blp.before_request
def authenticate() -> None:
    """Every SCIM request: a valid bearer token, within its rate, and no write while the
    relay is too far behind (RFC 6750; RFC 6585 §4)."""
    token = bearer_token()
    if token is None:
        raise errors.Unauthorized("a bearer token is required")
    extensions = current_app.extensions  # one context lookup for the three below
    token_digest = digest(token)  # what identifies the token, and keys its rate
    info = extensions[EXTENSION_KEY].tokens.by_digest(token_digest)
    if info is None:
        raise errors.Unauthorized("the bearer token is not valid")
    g.scim_token = info  # the audit trail names the token
    wait = extensions["rate_limiter"].wait(token_digest)
    if wait:
        raise errors.TooManyRequests("too many requests with this token", retry_after(wait))
    if _is_write() and extensions["backpressure"].overloaded():
        raise errors.TooManyRequests(
            "the bridge is behind relaying changes; retry later",
            str(backpressure.RETRY_AFTER_SECONDS),
        )


def _is_write() -> bool:
    req: Request = request._get_current_object()  # type: ignore[attr-defined]
    return req.method in WRITE_METHODS and not req.path.endswith("/.search")


def _projection(service: ResourceService) -> Projection:
    """The ``attributes``/``excludedAttributes`` of the request's query string."""
    req: Request = request._get_current_object()  # type: ignore[attr-defined]
    if not req.query_string:  # as most writes come: no query to parse, no missing-key lookups
        return parse_projection(None, None, service.rtype)
    args = req.args
    return parse_projection(args.get("attributes"), args.get("excludedAttributes"), service.rtype)


def _resource_response(
    service: ResourceService, record: Record, status: int, projection: Projection
) -> Response:
    body = render(record, service.rtype, base_url(), projection)
    headers = {"ETag": record.etag}
    if status == 201:
        headers["Location"] = body["meta"]["location"]
    return scim_response(body, status, headers)


def list_resources(type_id: str, params: dict[str, Any]) -> Response:
    """RFC 7644 §3.4.2: a ListResponse with exact totalResults."""
    try:
        args = load_list_query(params)
    except ValidationError as exc:
        raise errors.InvalidValue(f"bad query parameters: {exc.messages}") from exc
    service = resource_service(type_id)
    projection = parse_projection(args["attributes"], args["excludedAttributes"], service.rtype)
    settings = current_app.config["BRIDGE_SETTINGS"]
    page = query.run(
        services().directory,
        service.rtype,
        query.ListQuery(
            args["filter"], args["startIndex"], args["count"], args["sortBy"], args["sortOrder"]
        ),
        max_results=settings.max_results,
        members=type_id == "Group" and projection.wants("members"),
        groups=type_id == "User" and projection.wants("groups"),
    )
    resources = [render(r, service.rtype, base_url(), projection) for r in page.records]
    return scim_response(
        {
            "schemas": [LIST_RESPONSE],
            "totalResults": page.total,
            "startIndex": page.start_index,
            "itemsPerPage": len(resources),
            "Resources": resources,
        }
    )


class ResourceList(MethodView):
    """``/Users`` and ``/Groups``: list (GET) and create (POST, RFC 7644 §3.3)."""

    def __init__(self, type_id: str) -> None:
        self.type_id = type_id

    def get(self) -> Response:
        """List the resources (RFC 7644 §3.4.2)."""
        return list_resources(self.type_id, request.args.to_dict())

    def post(self) -> Response:
        """Create a resource; 201 with its location (RFC 7644 §3.3)."""
        service = resource_service(self.type_id)
        projection = _projection(service)
        outcome = service.create(json_body())
        assert outcome.record is not None  # a create always answers the stored record
        return _resource_response(service, outcome.record, 201, projection)


class ResourceItem(MethodView):
    """``/Users/{id}`` and ``/Groups/{id}``: read, replace, patch and delete one resource."""

    def __init__(self, type_id: str) -> None:
        self.type_id = type_id

    def get(self, rid: str) -> Response:
        """Read a resource; 304 when ``If-None-Match`` names its version (RFC 7644 §3.4.1)."""
        service = resource_service(self.type_id)
        projection = _projection(service)
        record = service.get(
            rid,
            members=self.type_id == "Group" and projection.wants("members"),
            groups=self.type_id == "User" and projection.wants("groups"),
        )
        if if_none_match(record.version):
            return scim_response(None, 304, {"ETag": record.etag})
        return _resource_response(service, record, 200, projection)

    def put(self, rid: str) -> Response:
        """Replace a resource (RFC 7644 §3.5.1)."""
        service = resource_service(self.type_id)
        projection = _projection(service)
        outcome = service.replace(rid, json_body(), if_match())
        assert outcome.record is not None  # a replace always answers the stored record
        return _resource_response(service, outcome.record, 200, projection)

    def patch(self, rid: str) -> Response:
        """Modify a resource (RFC 7644 §3.5.2); a group answers 204 unless asked for a body."""
        service = resource_service(self.type_id)
        outcome = service.patch(rid, json_body(), if_match())
        args = request.args
        wants_body = "attributes" in args or "excludedAttributes" in args
        if self.type_id == "Group" and not wants_body:
            # RFC 7644 §3.5.2: 204 is allowed; a group's members can be large.
            return scim_response(None, 204, {"ETag": outcome.etag})
        projection = _projection(service)
        record = outcome.record
        if record is None or (self.type_id == "Group" and projection.wants("members")):
            record = service.get(
                rid,
                members=self.type_id == "Group" and projection.wants("members"),
                groups=self.type_id == "User",
            )
        return _resource_response(service, record, 200, projection)

    def delete(self, rid: str) -> Response:
        """Delete a resource (RFC 7644 §3.6)."""
        resource_service(self.type_id).delete(rid, if_match())
        return scim_response(None, 204)


def _register(type_id: str, endpoint: str) -> None:
    blp.add_url_rule(endpoint, view_func=ResourceList.as_view(f"{type_id.lower()}s", type_id))
    blp.add_url_rule(
        f"{endpoint}/<rid>", view_func=ResourceItem.as_view(f"{type_id.lower()}", type_id)
    )

    @blp.post(f"{endpoint}/.search", endpoint=f"{type_id.lower()}s_search")
    def search() -> Response:
        """``POST /{endpoint}/.search`` (RFC 7644 §3.4.3)."""
        return _search(type_id)


def _search(type_id: str) -> Response:
    """RFC 7644 §3.4.3: a query sent as a SearchRequest body."""
    return list_resources(type_id, _search_request())


def _search_request() -> dict[str, Any]:
    body = json_body()
    if not isinstance(body, dict):
        raise errors.InvalidSyntax("a SearchRequest must be a JSON object")
    if SEARCH_REQUEST not in (body.get("schemas") or []):
        raise errors.InvalidValue(f"schemas must include {SEARCH_REQUEST}")
    return {k: v for k, v in body.items() if k != "schemas" and v is not None}


@blp.post("/.search", endpoint="root_search")
def root_search() -> Response:
    """RFC 7644 §3.4.3: a search across every resource type; each result says its type in
    ``meta.resourceType``. Attributes some type lacks are left out of that type's results."""
    try:
        args = LIST_QUERY.load(_search_request())
    except ValidationError as exc:
        raise errors.InvalidValue(f"bad query parameters: {exc.messages}") from exc
    rtypes = list(services().resource_types.values())
    projections = {
        rt.id: parse_projection(args["attributes"], args["excludedAttributes"], rt, known_only=True)
        for rt in rtypes
    }
    _check_names_known(args["attributes"], args["excludedAttributes"], rtypes)

    def derived(rtype: ResourceType) -> tuple[bool, bool]:
        """Whether this type's results load members, and groups: only when returned."""
        projection = projections[rtype.id]
        return (
            rtype.id == "Group" and projection.wants("members"),
            rtype.id == "User" and projection.wants("groups"),
        )

    page = query.run_across(
        services().directory,
        rtypes,
        query.ListQuery(
            args["filter"], args["startIndex"], args["count"], args["sortBy"], args["sortOrder"]
        ),
        max_results=current_app.config["BRIDGE_SETTINGS"].max_results,
        derived=derived,
    )
    resources = [render(r, rt, base_url(), projections[rt.id]) for rt, r in page.items]
    return scim_response(
        {
            "schemas": [LIST_RESPONSE],
            "totalResults": page.total,
            "startIndex": page.start_index,
            "itemsPerPage": len(resources),
            "Resources": resources,
        }
    )


def _check_names_known(
    attributes: str | None, excluded: str | None, rtypes: list[ResourceType]
) -> None:
    """Every name in ``attributes``/``excludedAttributes`` must belong to some type."""
    for text in (attributes, excluded):
        for name in (n.strip() for n in (text or "").split(",")):
            if name and all(rt.resolve_path_text(name) is None for rt in rtypes):
                raise errors.InvalidValue(f"unknown attribute '{name}' in attributes list")


_register("User", "/Users")
_register("Group", "/Groups")


@blp.get("/ServiceProviderConfig")
def service_provider_config() -> Response:
    """What the bridge supports (RFC 7643 §5)."""
    settings = current_app.config["BRIDGE_SETTINGS"]
    return scim_response(discovery.service_provider_config(settings, base_url()))


@blp.get("/ResourceTypes")
def resource_types() -> Response:
    """Every resource type (RFC 7643 §6), as a ListResponse."""
    items = [rt.to_scim(base_url()) for rt in services().resource_types.values()]
    return scim_response(_list_of(items))


@blp.get("/ResourceTypes/<type_id>")
def resource_type(type_id: str) -> Response:
    """One resource type by id, compared case-insensitively."""
    rtype = next(
        (rt for rt in services().resource_types.values() if rt.id.casefold() == type_id.casefold()),
        None,
    )
    if rtype is None:
        raise errors.NotFound(f"no resource type {type_id}")
    return scim_response(rtype.to_scim(base_url()))


@blp.get("/Schemas")
def schemas() -> Response:
    """Every schema some resource type uses (RFC 7643 §7), as a ListResponse."""
    return scim_response(
        _list_of([s.to_scim(base_url()) for s in discovery.all_schemas(services())])
    )


@blp.get("/Schemas/<path:schema_id>")
def schema(schema_id: str) -> Response:
    """One schema by URN, compared case-insensitively."""
    for s in discovery.all_schemas(services()):
        if s.id.lower() == schema_id.lower():
            return scim_response(s.to_scim(base_url()))
    raise errors.NotFound(f"no schema {schema_id}")


def _list_of(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": [LIST_RESPONSE],
        "totalResults": len(items),
        "startIndex": 1,
        "itemsPerPage": len(items),
        "Resources": items,
    }


blp.add_url_rule("/Bulk", view_func=bulk.bulk, methods=["POST"])
