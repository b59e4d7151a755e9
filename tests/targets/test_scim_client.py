"""The SCIM connector on its own, against a real HTTP server whose answers each test
scripts: quoting, garbage, matching, PATCH diffs and member batches."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import orjson
import pytest
from werkzeug.wrappers import Request, Response

from bridge.targets.base import Change, TargetError
from bridge.targets.http import Timeouts, target_http
from bridge.targets.scim_client import ScimConnector, diff
from tests.factories import ENTERPRISE
from tests.fakes.faulty import Server


@dataclass
class Seen:
    """One request the scripted target received."""

    method: str
    path: str
    args: dict[str, str]
    headers: dict[str, str]
    content: bytes


Handler = Callable[[Seen], Response]


class Scripted:
    """A target that answers each request with what the test's handler returns."""

    def __init__(self) -> None:
        self.handler: Handler = lambda seen: Response(status=500)
        self.seen: list[Seen] = []
        self.server = Server(self.app)

    def app(self, environ, start_response):
        request = Request(environ)
        seen = Seen(
            request.method,
            request.path,
            dict(request.args),
            dict(request.headers),
            request.get_data(),
        )
        self.seen.append(seen)
        return self.handler(seen)(environ, start_response)


@pytest.fixture(scope="module")
def scripted() -> Iterator[Scripted]:
    target = Scripted()
    target.server.up()
    yield target
    target.server.down()


@pytest.fixture
def answering(scripted: Scripted) -> Callable[[Handler], ScimConnector]:
    def connector(handler: Handler) -> ScimConnector:
        scripted.handler, scripted.seen = handler, []
        http = target_http({"type": "none"}, Timeouts(connect=2, read=5))
        return ScimConnector(f"{scripted.server.url}/scim/v2", http)

    return connector


def answer(status: int, body: object = None, text: str | None = None, **headers: str) -> Response:
    if text is not None:
        return Response(text, status=status, headers=headers)
    data = b"" if body is None else orjson.dumps(body)
    return Response(data, status=status, headers=headers, content_type="application/scim+json")


def user_change(action="create", **state) -> Change:
    payload = {"userName": 'a"b\\c', "externalId": "x"}
    return Change("user", "u1", action, payload, state, "msg_key")


def test_filter_values_are_quoted_as_json_strings(answering, scripted):
    def handler(request: Seen) -> Response:
        if request.method == "GET":
            return answer(200, {"totalResults": 0, "Resources": []})
        return answer(201, {"id": "r1"})

    applied = answering(handler).apply(user_change())
    assert scripted.seen[0].args["filter"] == 'userName eq "a\\"b\\\\c"'
    assert applied.remember["remote_id"] == "r1"
    assert applied.remember["sent"] == {"userName": 'a"b\\c', "externalId": "x", "active": True}


@pytest.mark.parametrize(
    "garbage",
    [
        {"text": "<html>login</html>"},
        {"body": {"Resources": "none"}},
        {"body": [1, 2]},
    ],
)
def test_a_target_answering_garbage_fails_without_retry(answering, garbage):
    with pytest.raises(TargetError) as err:
        answering(lambda request: answer(200, **garbage)).apply(user_change())
    assert not err.value.retryable
    assert "unexpected answer" in str(err.value)


def test_a_created_resource_without_an_id_fails_without_retry(answering):
    def handler(request: Seen) -> Response:
        if request.method == "GET":
            return answer(200, {"Resources": []})
        return answer(201, {"userName": "x"})

    with pytest.raises(TargetError, match="without the new resource's id") as err:
        answering(handler).apply(user_change())
    assert not err.value.retryable


def test_several_matching_accounts_are_not_guessed_between(answering):
    both = [{"id": "1", "userName": 'A"B\\c'}, {"id": "2", "userName": 'a"b\\C'}]
    with pytest.raises(TargetError, match="2 accounts match"):
        answering(lambda request: answer(200, {"Resources": both})).apply(user_change())


def test_server_errors_are_retryable_with_retry_after(answering):
    busy = answer(503, text="busy", **{"Retry-After": "7"})
    with pytest.raises(TargetError) as err:
        answering(lambda request: busy).apply(user_change())
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


def test_members_are_sent_in_batches_with_their_own_idempotency_keys(answering, scripted):
    def handler(request: Seen) -> Response:
        if request.path.endswith("/ServiceProviderConfig"):
            return answer(200, {"patch": {"supported": True}})
        return answer(204)

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
    applied = answering(handler).apply(change)
    seen = [r for r in scripted.seen if not r.path.endswith("/ServiceProviderConfig")]
    bodies = [orjson.loads(r.content)["Operations"] for r in seen]
    assert [len(b[0]["value"]) if b[0]["op"] == "add" else len(b) for b in bodies] == [100, 20, 30]
    assert bodies[2][0] == {"op": "remove", "path": 'members[value eq "r-u120"]'}
    keys = [r.headers["Idempotency-Key"] for r in seen]
    assert keys == ["msg_key_a0", "msg_key_a1", "msg_key_r0"]
    assert {r.path for r in seen} == {"/scim/v2/Groups/rg"}
    assert applied.remember["skipped_members"] == ["unknown"]
