"""What reconciliation reads from Entra ID: delta rounds of users and groups, the app's
assignments, group members, single objects. Objects are plain dicts shaped like Graph's
JSON (camelCase keys, ``@removed`` and ``members@delta`` as Graph sends them).

Requests are built with msgraph-sdk's request builders and sent through its request
adapter (token, retry on 429/503/504 honouring ``Retry-After``, ``ODataError`` for
failures), but responses are decoded as JSON rather than into SDK models: building a
``User`` model costs about 5 ms (its field table is rebuilt per object), which would be
minutes for a large tenant, and the engine wants Graph's JSON shape anyway.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.request_information import RequestInformation
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.graph_service_client import GraphServiceClient

from bridge.graph.client import (
    DeltaExpired,
    GraphAuthError,
    GraphError,
    GraphNotFound,
    GraphSettings,
    GraphThrottled,
    graph_client,
    http_client,
)
from bridge.graph.translate import GraphObject

__all__ = [
    "DeltaExpired",
    "GraphAuthError",
    "GraphError",
    "GraphNotFound",
    "GraphSource",
    "GraphThrottled",
    "DeltaPage",
]

ERROR_MAPPING: dict[str, Any] = {"XXX": ODataError}
"""Every non-2xx answer is parsed as Graph's ``{"error": {"code", "message"}}``."""

SYNC_RESET_CODES = frozenset({"syncStateNotFound", "syncStateInvalid", "resyncRequired"})
"""Error codes saying a delta link can no longer be followed (Graph sends them with 410)."""

THROTTLED_STATUSES = frozenset({429, 503, 504})
"""Statuses kiota's RetryHandler retries; seeing one means it ran out of retries."""

ASSIGNMENT_PAGE_SIZE = 999
"""``$top`` for appRoleAssignedTo (Graph's maximum)."""


@dataclass(frozen=True)
class DeltaPage:
    """One page of a delta round. ``delta_link`` is set on the last page only: save it
    once every page has been applied, and pass it to start the next round."""

    items: list[GraphObject]
    delta_link: str | None


class GraphSource:
    """Reads the tenant through Microsoft Graph; use ``async with`` inside one event loop."""

    def __init__(self, settings: GraphSettings) -> None:
        self.settings = settings
        self._http: httpx.AsyncClient | None = None
        self._client: GraphServiceClient | None = None

    async def __aenter__(self) -> GraphSource:
        http = http_client(self.settings)
        try:
            self._client = graph_client(self.settings, http)
        except BaseException:
            await http.aclose()
            raise
        self._http = http
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._http is not None:
            await self._http.aclose()
        self._http = self._client = None

    @property
    def client(self) -> GraphServiceClient:
        """The SDK client of the current ``async with`` block."""
        if self._client is None:
            raise RuntimeError("GraphSource is used outside 'async with'")
        return self._client

    async def users_delta(self, link: str | None, select: list[str]) -> AsyncIterator[DeltaPage]:
        """A delta round of users: everything when ``link`` is None, else the changes since
        that delta link. Removed users come as ``{"id", "@removed": {"reason"}}``
        ("changed": soft-deleted, restorable; "deleted": gone). With ``manager`` in
        ``select`` a user carries ``manager: {"id"}``, or ``manager: None`` when it was
        cleared. Raises :class:`DeltaExpired` when ``link`` is too old."""
        builder = self.client.users.delta
        params = builder.DeltaRequestBuilderGetQueryParameters(select=select)
        async for page in self._delta(builder, link, params):
            yield DeltaPage([_user(item) for item in page.items], page.delta_link)

    async def groups_delta(self, link: str | None, select: list[str]) -> AsyncIterator[DeltaPage]:
        """A delta round of groups; with ``members`` in ``select`` each carries
        ``members@delta``: ``[{"@odata.type", "id"}]``, every member on the first round,
        additions and ``@removed`` entries afterwards. Graph may spread one group's
        members over several pages, so the same group id can appear more than once."""
        builder = self.client.groups.delta
        params = builder.DeltaRequestBuilderGetQueryParameters(select=select)
        async for page in self._delta(builder, link, params):
            yield page

    async def assigned_principals(self) -> tuple[set[str], set[str]]:
        """(user ids, group ids) in scope: those assigned to the app's service principal,
        or, without one, ``(set(), scope_groups)``."""
        sp_id = self.settings.service_principal_id
        if not sp_id:
            return set(), set(self.settings.scope_groups)
        principal = self.client.service_principals.by_service_principal_id(sp_id)
        builder = principal.app_role_assigned_to
        params = builder.AppRoleAssignedToRequestBuilderGetQueryParameters(
            select=["principalId", "principalType"], top=ASSIGNMENT_PAGE_SIZE
        )
        users: set[str] = set()
        groups: set[str] = set()
        async for values in self._pages(builder, params):
            for assignment in values:
                kind = assignment.get("principalType")
                if kind in ("User", "Group"):
                    (users if kind == "User" else groups).add(assignment["principalId"])
        return users, groups

    async def group_member_ids(self, group_id: str) -> AsyncIterator[list[str]]:
        """Ids of the group's direct members that are users, a page at a time. Raises
        :class:`GraphNotFound` if the group does not exist."""
        builder = self.client.groups.by_group_id(group_id).members.graph_user
        params = builder.GraphUserRequestBuilderGetQueryParameters(
            select=["id"], top=self.settings.page_size
        )
        async for values in self._pages(builder, params):
            yield [member["id"] for member in values]

    async def user(self, key: str, select: list[str]) -> GraphObject | None:
        """The user with this id or userPrincipalName, or None if there is none.
        ``manager`` in ``select`` becomes ``$expand=manager($select=id)``."""
        fields = [name for name in select if name != "manager"]
        expand = ["manager($select=id)"] if len(fields) < len(select) else None
        builder = self.client.users.by_user_id(key)
        params = builder.UserItemRequestBuilderGetQueryParameters(select=fields, expand=expand)
        body = await self._send(_get_info(builder, params), missing_ok=True)
        return None if body is None else _user(body)

    async def group(self, group_id: str, select: list[str]) -> GraphObject | None:
        """The group, or None if there is none (members: use :meth:`group_member_ids`)."""
        builder = self.client.groups.by_group_id(group_id)
        params = builder.GroupItemRequestBuilderGetQueryParameters(
            select=[name for name in select if name != "members"]
        )
        body: GraphObject | None = await self._send(_get_info(builder, params), missing_ok=True)
        return body

    async def _delta(self, builder: Any, link: str | None, params: Any) -> AsyncIterator[DeltaPage]:
        """Follow one delta round by hand: the SDK's PageIterator loses the delta link."""
        request = builder.with_url(link) if link else builder
        while True:
            body = await self._send(_get_info(request, params, self._prefer()))
            items = body.get("value") or []
            next_link = body.get("@odata.nextLink")
            if next_link:
                yield DeltaPage(items, None)
                request = builder.with_url(next_link)
                continue
            delta_link = body.get("@odata.deltaLink")
            if not delta_link:
                raise GraphError("delta round ended without @odata.deltaLink")
            yield DeltaPage(items, delta_link)
            return

    async def _pages(self, builder: Any, params: Any) -> AsyncIterator[list[GraphObject]]:
        """The ``value`` of each page of a collection, following ``@odata.nextLink``."""
        request = builder
        while True:
            body = await self._send(_get_info(request, params))
            yield body.get("value") or []
            next_link = body.get("@odata.nextLink")
            if not next_link:
                return
            request = builder.with_url(next_link)

    def _prefer(self) -> dict[str, str]:
        # Graph's delta ignores $top; the page size is a preference, and it is not carried
        # into next links, so every request repeats it.
        return {"Prefer": f"odata.maxpagesize={self.settings.page_size}"}

    async def _send(self, info: RequestInformation, missing_ok: bool = False) -> Any:
        """Send through the SDK's adapter and decode the JSON body; errors become ours."""
        # kiota annotates the result with an unbound type variable, which reads as None
        adapter: Any = self.client.request_adapter
        try:
            raw = await adapter.send_primitive_async(info, "bytes", ERROR_MAPPING)
        except APIError as exc:
            if missing_ok and exc.response_status_code == 404:
                return None
            raise _translate(exc) from exc
        except httpx.HTTPError as exc:
            raise GraphError(f"Graph request failed: {exc!r}") from exc
        try:
            return orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError as exc:
            raise GraphError(f"Graph sent a body that is not JSON: {raw[:200]!r}") from exc


def _get_info(
    builder: Any, params: Any, headers: dict[str, str] | None = None
) -> RequestInformation:
    """A GET for ``builder`` (a ``with_url`` builder keeps its URL and ignores ``params``)."""
    config: RequestConfiguration[Any] = RequestConfiguration(query_parameters=params)
    for name, value in (headers or {}).items():
        config.headers.add(name, value)
    info: RequestInformation = builder.to_get_request_information(config)
    return info


def _translate(exc: APIError) -> GraphError:
    """Our error for a failed Graph answer."""
    status = exc.response_status_code or 0
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None) or ""
    message = f"Graph answered {status} {code}: {getattr(error, 'message', None) or exc}"
    if status == 410 or code in SYNC_RESET_CODES:
        return DeltaExpired(message, status)
    if status in (401, 403):
        return GraphAuthError(message, status)
    if status in THROTTLED_STATUSES:
        return GraphThrottled(message, status, _retry_after(exc))
    if status == 404:
        return GraphNotFound(message, status)
    return GraphError(message, status)


def _retry_after(exc: APIError) -> float | None:
    """The ``Retry-After`` of a failed answer, in seconds, when it is a number."""
    value = (exc.response_headers or {}).get("retry-after")
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _user(item: GraphObject) -> GraphObject:
    """Graph's ``manager@delta`` (delta) or expanded ``manager`` as ``manager: {"id"}``."""
    if "manager@delta" in item:
        managers = item.pop("manager@delta") or []
        current = [m for m in managers if "@removed" not in m]
        item["manager"] = {"id": current[-1]["id"]} if current else None
    elif isinstance(item.get("manager"), dict):
        item["manager"] = {"id": item["manager"]["id"]}
    return item
