"""Bad input never reaches a 5xx: each row is a request that once did, and the answer it gets.

Every answer is a SCIM Error (RFC 7644 §3.12) with the status and ``scimType`` of its row,
and leaves the directory as it was. ``{user}`` and ``{group}`` stand for the ids of a user
and a group (the user is a member) that exist; ``{ver}`` for a version that cannot exist.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from tests.factories import entra_group, entra_user, patch

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
HUGE = 'W/"99999999999999999999999999"'
NESTED_PARENS = "(" * 500 + 'userName eq "x"' + ")" * 500
NESTED_NOT = "not (" * 500 + 'userName eq "x"' + ")" * 500
TEN_THOUSAND_OR = " or ".join(['userName eq "x"'] * 10_000)
TEN_THOUSAND_AND = " and ".join(['userName eq "x"'] * 10_000)
DEEP_ARRAY = "[" * 10_000 + "]" * 10_000
DEEP_OBJECT = '{"a":' * 10_000 + "1" + "}" * 10_000


def deep(levels: int) -> object:
    value: object = "x"
    for _ in range(levels):
        value = [value]
    return value


@dataclass
class Case:
    method: str
    path: str
    status: int
    scim_type: str | None = None
    json: object = None
    data: str | None = None
    query: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)


CASES = {
    # filters: nesting, not() nesting and 10,000 clauses (RFC 7644 §3.4.2.2)
    "get-filter-nested-parentheses": Case(
        "GET", "/Users", 400, "invalidFilter", query={"filter": NESTED_PARENS}
    ),
    "get-filter-nested-not": Case(
        "GET", "/Groups", 400, "invalidFilter", query={"filter": NESTED_NOT}
    ),
    "get-filter-ten-thousand-or": Case(
        "GET", "/Users", 400, "invalidFilter", query={"filter": TEN_THOUSAND_OR}
    ),
    "search-filter-ten-thousand-and": Case(
        "POST",
        "/Users/.search",
        400,
        "invalidFilter",
        json={"schemas": [SEARCH], "filter": TEN_THOUSAND_AND},
    ),
    "search-filter-nested-parentheses": Case(
        "POST",
        "/Groups/.search",
        400,
        "invalidFilter",
        json={"schemas": [SEARCH], "filter": NESTED_PARENS},
    ),
    "patch-members-value-filter-ten-thousand-or": Case(
        "PATCH",
        "/Groups/{group}",
        400,
        "invalidFilter",
        json=patch(
            {"op": "remove", "path": "members[" + " or ".join(['value eq "x"'] * 10_000) + "]"}
        ),
    ),
    "patch-emails-value-filter-nested": Case(
        "PATCH",
        "/Users/{user}",
        400,
        "invalidFilter",
        json=patch(
            {
                "op": "replace",
                "path": "emails[" + "(" * 500 + 'type eq "work"' + ")" * 500 + "].value",
                "value": "a@example.com",
            }
        ),
    ),
    # ids that would address another key family of the directory
    "delete-user-groups-key": Case("DELETE", "/Users/{user}:groups", 404),
    "get-group-members-key": Case("GET", "/Groups/{group}:members", 404),
    "put-group-members-key": Case(
        "PUT", "/Groups/{group}:members", 404, json=entra_group(displayName="x")
    ),
    "patch-user-groups-key": Case(
        "PATCH",
        "/Users/{user}:groups",
        404,
        json=patch({"op": "replace", "path": "title", "value": "x"}),
    ),
    "filter-id-of-groups-key": Case(
        "GET", "/Users", 200, query={"filter": 'id eq "{user}:groups"'}
    ),
    "bulk-delete-groups-key": Case(
        "POST",
        "/Bulk",
        200,
        json={
            "schemas": [BULK],
            "Operations": [{"method": "DELETE", "path": "/Users/{user}:groups"}],
        },
    ),
    "patch-add-member-groups-key": Case(
        "PATCH",
        "/Groups/{group}",
        400,
        "invalidValue",
        json=patch({"op": "add", "path": "members", "value": [{"value": "{user}:groups"}]}),
    ),
    "patch-remove-member-filter-groups-key": Case(
        "PATCH",
        "/Groups/{group}",
        400,
        "invalidValue",
        json=patch({"op": "remove", "path": 'members[value eq "{user}:groups"]'}),
    ),
    "post-group-member-groups-key": Case(
        "POST",
        "/Groups",
        400,
        "invalidValue",
        json=entra_group(members=[{"value": "{user}:groups"}]),
    ),
    "put-group-member-not-an-id": Case(
        "PUT",
        "/Groups/{group}",
        400,
        "invalidValue",
        json=entra_group(members=[{"value": "bridge:tokens"}]),
    ),
    # paging (RFC 7644 §3.4.2.4)
    "start-index-beyond-any-number": Case("GET", "/Users", 200, query={"startIndex": 10**20}),
    "negative-count-huge-start-index": Case(
        "GET", "/Users", 200, query={"count": -1, "startIndex": 10**20}
    ),
    "count-beyond-any-number": Case("GET", "/Groups", 200, query={"count": 10**30}),
    "sorted-huge-start-index": Case(
        "GET", "/Users", 200, query={"sortBy": "userName", "startIndex": 10**20}
    ),
    "search-huge-start-index": Case(
        "POST", "/Users/.search", 200, json={"schemas": [SEARCH], "startIndex": 10**20}
    ),
    # versions no resource can have (RFC 7644 §3.14)
    "if-match-huge-membership-patch": Case(
        "PATCH",
        "/Groups/{group}",
        412,
        json=patch({"op": "remove", "path": "members"}),
        headers={"If-Match": HUGE},
    ),
    "if-match-huge-patch": Case(
        "PATCH",
        "/Users/{user}",
        412,
        json=patch({"op": "replace", "path": "title", "value": "x"}),
        headers={"If-Match": HUGE},
    ),
    "if-match-huge-put": Case(
        "PUT", "/Groups/{group}", 412, json=entra_group(), headers={"If-Match": HUGE}
    ),
    "if-match-huge-delete": Case("DELETE", "/Users/{user}", 412, headers={"If-Match": HUGE}),
    "if-match-thousands-of-digits": Case(
        "DELETE", "/Users/{user}", 412, headers={"If-Match": 'W/"' + "9" * 5000 + '"'}
    ),
    "if-none-match-huge-get": Case("GET", "/Users/{user}", 200, headers={"If-None-Match": HUGE}),
    "bulk-version-huge": Case(
        "POST",
        "/Bulk",
        200,
        json={
            "schemas": [BULK],
            "Operations": [
                {
                    "method": "PATCH",
                    "path": "/Groups/{group}",
                    "version": HUGE,
                    "data": patch({"op": "remove", "path": "members"}),
                }
            ],
        },
    ),
    # bodies nested 10,000 deep, and deeper than MAX_JSON_DEPTH
    "deep-array-body": Case("POST", "/Users", 400, "invalidSyntax", data=DEEP_ARRAY),
    "deep-object-body": Case("PATCH", "/Users/{user}", 400, "invalidSyntax", data=DEEP_OBJECT),
    "bulk-data-nested-900-deep": Case(
        "POST",
        "/Bulk",
        400,
        "invalidSyntax",
        json={"schemas": [BULK], "Operations": [{"method": "POST", "data": deep(900)}]},
    ),
    "search-body-nested-40-deep": Case(
        "POST", "/Users/.search", 400, "invalidSyntax", json={"schemas": [SEARCH], "x": deep(40)}
    ),
    # too many PATCH operations
    "patch-thousands-of-operations": Case(
        "PATCH",
        "/Users/{user}",
        400,
        "invalidValue",
        json=patch(*[{"op": "replace", "path": "title", "value": str(i)} for i in range(1001)]),
    ),
}


@pytest.fixture
def existing(scim) -> dict[str, str]:
    user = scim.post("/Users", json=entra_user()).json["id"]
    group = entra_group(members=[{"value": user}])
    return {"user": user, "group": scim.post("/Groups", json=group).json["id"]}


def fill(value: object, ids: dict[str, str]) -> object:
    """``value`` with ``{user}``/``{group}`` replaced, in strings and in JSON alike."""
    text = json.dumps(value)
    for key, rid in ids.items():
        text = text.replace("{" + key + "}", rid)
    return json.loads(text)


def snapshot(redis_client) -> dict[bytes, object]:
    """Every key of the directory but the change stream, with its value."""
    out = {}
    for key in sorted(redis_client.keys("bridge:*")):
        kind = redis_client.type(key)
        if kind == b"string":
            out[key] = redis_client.get(key)
        elif kind == b"hash":
            out[key] = redis_client.hgetall(key)
        elif kind == b"set":
            out[key] = redis_client.smembers(key)
        elif kind == b"zset":
            out[key] = redis_client.zrange(key, 0, -1)
    return out


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_gets_a_client_error_and_changes_nothing(scim, existing, redis_client, case):
    before = snapshot(redis_client)
    kwargs = {"headers": {**case.headers, "Content-Type": "application/scim+json"}}
    if case.json is not None:
        kwargs["data"] = json.dumps(fill(case.json, existing))
    elif case.data is not None:
        kwargs["data"] = case.data
    if case.query:
        kwargs["query_string"] = fill(case.query, existing)
    response = scim._call(case.method, fill(case.path, existing), **kwargs)
    assert response.status_code == case.status, response.get_data(as_text=True)[:300]
    body = response.json
    if case.status >= 400:
        assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
        assert body.get("scimType") == case.scim_type
        assert len(body.get("detail", "")) < 300
    for result in (body or {}).get("Operations", []):
        assert 400 <= int(result["status"]) < 500
    assert snapshot(redis_client) == before
