"""HTTP towards targets: no redirects followed, bounded answers, timeouts and refused
connections as retryable errors in words, and OAuth2 tokens renewed after a 401."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from werkzeug.wrappers import Request, Response

from bridge.targets import http
from bridge.targets.base import TargetError
from bridge.targets.http import Timeouts, raise_for_answer, target_http
from tests.fakes.faulty import Server
from tests.fakes.scim_oauth import TokenEndpoint

FAST = Timeouts(connect=2, read=0.5)


class Target:
    """Answers per path: a redirect, a large body, a slow answer, a token-checking API."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.accepted = {"good"}
        self.release = threading.Event()

    def __call__(self, environ, start_response):
        request = Request(environ)
        self.requests.append(request.path)
        if request.path == "/moved":
            response = Response(status=302, headers={"Location": "/elsewhere"})
        elif request.path == "/large":
            response = Response(b"x" * 2048)
        elif request.path == "/slow":
            self.release.wait(5)
            response = Response("late")
        elif request.path == "/api":
            token = request.headers.get("Authorization", "").removeprefix("Bearer ")
            response = Response(status=204 if token in self.accepted else 401)
        else:
            response = Response("ok")
        return response(environ, start_response)


@pytest.fixture(scope="module")
def target() -> Iterator[tuple[Target, Server]]:
    app = Target()
    server = Server(app).up()
    yield app, server
    app.release.set()
    server.down()


def test_a_redirect_is_answered_not_followed(target):
    app, server = target
    answer = target_http({}, FAST).request("GET", server.url + "/moved", what="GET")
    assert answer.status_code == 302
    assert "/elsewhere" not in app.requests
    with pytest.raises(TargetError) as err:
        raise_for_answer(answer, "GET /moved")
    assert not err.value.retryable


def test_an_answer_longer_than_the_limit_is_refused_without_retry(target, monkeypatch):
    monkeypatch.setattr(http, "MAX_ANSWER_BYTES", 1024)
    _, server = target
    with pytest.raises(TargetError, match="longer than 1024 bytes") as err:
        target_http({}, FAST).request("GET", server.url + "/large", what="GET /large")
    assert not err.value.retryable


def test_a_target_that_does_not_answer_in_time_is_retried_later(target):
    _, server = target
    with pytest.raises(TargetError, match="no answer within the read timeout") as err:
        target_http({}, FAST).request("GET", server.url + "/slow", what="GET /slow")
    assert err.value.retryable


def test_a_refused_connection_is_retried_later():
    with pytest.raises(TargetError, match="cannot connect") as err:
        target_http({}, FAST).request("GET", "http://127.0.0.1:9/", what="GET")
    assert err.value.retryable


def test_a_bearer_token_is_sent_with_every_request(target):
    _, server = target
    client = target_http({"type": "bearer", "token": "good"}, FAST)
    assert client.request("GET", server.url + "/api", what="GET").status_code == 204


def test_an_oauth2_token_refused_with_401_is_fetched_again_once(target):
    app, server = target
    endpoint = TokenEndpoint("bridge", "secret", access_token="first")
    tokens = Server(endpoint).up()
    try:
        auth = {
            "type": "oauth2",
            "token_url": tokens.url + "/token",
            "client_id": "bridge",
            "client_secret": "secret",
        }
        client = target_http(auth, FAST)
        app.accepted = {"first"}
        assert client.request("GET", server.url + "/api", what="GET").status_code == 204
        endpoint.access_token, app.accepted = "second", {"second"}
        assert client.request("GET", server.url + "/api", what="GET").status_code == 204
        assert endpoint.calls == 2
    finally:
        app.accepted = {"good"}
        tokens.down()
