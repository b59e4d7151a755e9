"""HTTP towards a SCIM service provider: requests, their errors, and one change's calls.

:class:`ScimHttp` makes requests and learns whether the target supports PATCH;
:class:`ChangeCalls` is what one change sends through it, each write under the change's
idempotency key (with a suffix per further write) and with what it knows of the account.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

import orjson

from bridge.directory.stored import Kind
from bridge.scim import urns
from bridge.targets.base import Applied, Change, TargetError
from bridge.targets.http import Answer, TargetHttp, raise_for_answer

log = logging.getLogger(__name__)

SCIM_MEDIA_TYPE = "application/scim+json"
PATCH_OP = urns.PATCH_OP
CORE_SCHEMA: dict[Kind, str] = {
    "user": urns.USER,
    "group": urns.GROUP,
}
ENDPOINT: dict[Kind, str] = {"user": "/Users", "group": "/Groups"}

PATCH_UNKNOWN_STATUSES = frozenset({404, 405, 501})
"""``/ServiceProviderConfig`` answers meaning "not published": PATCH is then assumed."""

JsonObject = dict[str, Any]


class ScimHttp:
    """Requests to a SCIM 2.0 service provider at ``base_url`` (ending in ``/v2``)."""

    def __init__(self, base_url: str, http: TargetHttp) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http
        self._patch: bool | None = None

    def check(self) -> Applied:
        """GET ``/ServiceProviderConfig``: any 2xx means the target is up."""
        response = self.request("GET", "/ServiceProviderConfig")
        return Applied(response.status_code)

    def close(self) -> None:
        """Close the pooled connections."""
        self.http.close()

    def patch_supported(self) -> bool:
        """Whether the target accepts PATCH (RFC 7643 §5), asked once per connector."""
        if self._patch is None:
            response = self.request("GET", "/ServiceProviderConfig", allow=PATCH_UNKNOWN_STATUSES)
            self._patch = patch_flag(response)
        return self._patch

    def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        body: JsonObject | None = None,
        params: dict[str, str] | None = None,
        allow: frozenset[int] = frozenset(),
    ) -> Answer:
        """One call; TargetError for network errors and non-2xx answers not in ``allow``."""
        headers = {"Accept": SCIM_MEDIA_TYPE}
        if key:
            headers["Idempotency-Key"] = key
        content = None
        if body is not None:
            headers["Content-Type"] = SCIM_MEDIA_TYPE
            content = orjson.dumps(body)
        what = f"SCIM {method} {path}"
        answer = self.http.request(
            method, self.base_url + path, body=content, params=params, headers=headers, what=what
        )
        if answer.status_code not in allow:
            raise_for_answer(answer, what)
        return answer


class ChangeCalls:
    """The calls of one change, and what they learnt: the account's id at the target, what
    was last written to it, and the last HTTP status."""

    def __init__(self, connector: ScimHttp, change: Change) -> None:
        self.connector = connector
        self.change = change
        self.kind: Kind = change.kind
        self.endpoint = ENDPOINT[change.kind]
        self.status: int | None = None
        self.remote_id: str | None = change.state.get("remote_id")
        self.sent: JsonObject | None = change.state.get("sent")

    def path(self) -> str:
        """The account's URL path at the target."""
        return f"{self.endpoint}/{quote(str(self.remote_id), safe='')}"

    def resource(self, body: JsonObject, with_id: bool = False) -> JsonObject:
        """``body`` as a SCIM resource: with its ``schemas`` (and ``id``)."""
        schemas = [CORE_SCHEMA[self.kind]] + [k for k in body if k.lower().startswith("urn:")]
        resource = {"schemas": schemas, **body}
        if with_id:
            resource["id"] = self.remote_id
        return resource

    def patch(self, ops: list[JsonObject], label: str) -> None:
        """PATCH the account with ``ops`` (RFC 7644 §3.5.2)."""
        self.write("PATCH", self.path(), label, {"schemas": [PATCH_OP], "Operations": ops})

    def read(self, path: str, params: dict[str, str] | None = None) -> Answer:
        """GET ``path``."""
        return self.connector.request("GET", path, key=self.change.idempotency_key, params=params)

    def write(
        self,
        method: str,
        path: str,
        label: str,
        body: JsonObject | None,
        allow: frozenset[int] = frozenset(),
    ) -> Answer:
        """A write, its idempotency key the change's plus ``label``; keeps its status."""
        key = self.change.idempotency_key + (f"_{label}" if label else "")
        response = self.connector.request(method, path, key=key, body=body, allow=allow)
        self.status = response.status_code
        return response


def patch_flag(response: Answer) -> bool:
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


def json_object(response: Answer, what: str) -> JsonObject:
    """The answer's JSON object; TargetError when it is not one."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise garbage(what, f"HTTP {response.status_code} without a JSON object")
    return body


def resource_id(response: Answer, what: str) -> str:
    """The created resource's id: from the body, or the ``Location`` header (§3.3)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    rid = body.get("id") if isinstance(body, dict) else None
    if isinstance(rid, str) and rid:
        return rid
    location = (response.header("Location") or "").rstrip("/")
    if "/" in location:
        return str(location.rsplit("/", 1)[1])
    raise garbage(what, f"HTTP {response.status_code} without the new resource's id")


def garbage(what: str, detail: str) -> TargetError:
    """The error for an answer the connector cannot read (not worth retrying)."""
    return TargetError(f"{what}: unexpected answer from the target: {detail}", retryable=False)


def filter_value(value: str) -> str:
    """A filter ``compValue`` string (RFC 7644 §3.4.2.2: JSON rules, quotes escaped)."""
    return json.dumps(value, ensure_ascii=False)
