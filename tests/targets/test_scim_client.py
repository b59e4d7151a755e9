"""The SCIM connector on its own, against answers made up per test: quoting, garbage,
matching, PATCH diffs and member batches."""

from __future__ import annotations

import httpx
import orjson
import pytest

from bridge.targets.base import Change, TargetError
from bridge.targets.scim_client import ScimConnector, diff
from tests.factories import ENTERPRISE


# --- the connector on its own -------------------------------------------------------------
def connector_answering(handler) -> ScimConnector:
    return ScimConnector(
        "https://target.test/scim/v2", httpx.Client(transport=httpx.MockTransport(handler))
    )


def user_change(action="create", **state) -> Change:
    payload = {"userName": 'a"b\\c', "externalId": "x"}
    return Change("user", "u1", action, payload, state, "msg_key")


def test_filter_values_are_quoted_as_json_strings():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "GET":
            return httpx.Response(200, json={"totalResults": 0, "Resources": []})
        return httpx.Response(201, json={"id": "r1"})

    applied = connector_answering(handler).apply(user_change())
    assert seen[0].url.params["filter"] == 'userName eq "a\\"b\\\\c"'
    assert applied.remember["remote_id"] == "r1"
    assert applied.remember["sent"] == {"userName": 'a"b\\c', "externalId": "x", "active": True}


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="<html>login</html>"),
        httpx.Response(200, json={"Resources": "none"}),
        httpx.Response(200, json=[1, 2]),
    ],
)
def test_a_target_answering_garbage_fails_without_retry(answer):
    with pytest.raises(TargetError) as err:
        connector_answering(lambda request: answer).apply(user_change())
    assert not err.value.retryable
    assert "unexpected answer" in str(err.value)


def test_a_created_resource_without_an_id_fails_without_retry():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"Resources": []})
        return httpx.Response(201, json={"userName": "x"})

    with pytest.raises(TargetError, match="without the new resource's id") as err:
        connector_answering(handler).apply(user_change())
    assert not err.value.retryable


def test_several_matching_accounts_are_not_guessed_between():
    both = [{"id": "1", "userName": 'A"B\\c'}, {"id": "2", "userName": 'a"b\\C'}]
    answer = httpx.Response(200, json={"Resources": both})
    with pytest.raises(TargetError, match="2 accounts match"):
        connector_answering(lambda request: answer).apply(user_change())


def test_server_errors_are_retryable_with_retry_after():
    answer = httpx.Response(503, headers={"Retry-After": "7"}, text="busy")
    with pytest.raises(TargetError) as err:
        connector_answering(lambda request: answer).apply(user_change())
    assert (err.value.retryable, err.value.retry_after, err.value.status) == (True, 7.0, 503)


def test_diff_compares_complex_attributes_and_extensions_one_level_down():
    old = {
        "title": "a",
        "name": {"givenName": "Ada", "middleName": "M"},
        ENTERPRISE: {"department": "R&D", "manager": {"value": "m1"}},
        "nickName": "x",
    }
    new = {
        "title": "a",
        "name": {"givenName": "Ada", "familyName": "L"},
        ENTERPRISE: {"department": "Ops", "manager": {"value": "m1"}},
        "emails": [{"value": "a@x"}],
    }
    assert diff(old, new) == [
        {"op": "replace", "path": "name.familyName", "value": "L"},
        {"op": "remove", "path": "name.middleName"},
        {"op": "replace", "path": f"{ENTERPRISE}:department", "value": "Ops"},
        {"op": "replace", "path": "emails", "value": [{"value": "a@x"}]},
        {"op": "remove", "path": "nickName"},
    ]
    assert diff(old, new, removes=False) == [op for op in diff(old, new) if op["op"] == "replace"]


def test_members_are_sent_in_batches_with_their_own_idempotency_keys():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/ServiceProviderConfig"):
            return httpx.Response(200, json={"patch": {"supported": True}})
        seen.append(request)
        return httpx.Response(204)

    ids = [f"u{n}" for n in range(150)]
    change = Change(
        "group",
        "g1",
        "none",
        {"displayName": "G"},
        {"remote_id": "rg", "sent": {"displayName": "G"}},
        "msg_key",
        members_added=ids[:120],
        members_removed=ids[120:] + ["unknown"],
        member_refs={uid: f"r-{uid}" for uid in ids},
    )
    applied = connector_answering(handler).apply(change)
    bodies = [orjson.loads(r.content)["Operations"] for r in seen]
    assert [len(b[0]["value"]) if b[0]["op"] == "add" else len(b) for b in bodies] == [100, 20, 30]
    assert bodies[2][0] == {"op": "remove", "path": 'members[value eq "r-u120"]'}
    keys = [r.headers["Idempotency-Key"] for r in seen]
    assert keys == ["msg_key_a0", "msg_key_a1", "msg_key_r0"]
    assert {r.url.path for r in seen} == {"/scim/v2/Groups/rg"}
    assert applied.remember["skipped_members"] == ["unknown"]
