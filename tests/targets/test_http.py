"""HTTP towards targets: no redirects followed, bounded answers, timeouts and refused
connections as retryable errors in words, and OAuth2 tokens renewed after a 401."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from werkzeug.wrappers import Request, Response

from bridge.targets import http
from bridge.targets.base import TargetError
from bridge.targets.http import Timeouts, raise_for_answer, target_http
from tests.fakes.faulty import Server
from tests.fakes.graph_tls import make_server_tls, serve_tls
from tests.fakes.scim_oauth import TokenEndpoint

FAST = Timeouts(connect=2, read=0.5)


class Writes(threading.local):
    """What this thread's HTTP connections wrote, while a test records it (``http.client``
    announces each write as the audit event ``http.client.send``)."""

    sent: list[bytes] | None = None


WRITES = Writes()


def _record_write(event: str, args: tuple) -> None:
    if event == "http.client.send" and WRITES.sent is not None:
        WRITES.sent.append(bytes(args[1]))


sys.addaudithook(_record_write)


@contextmanager
def writes() -> Iterator[list[bytes]]:
    """The writes of this thread's HTTP connections inside the block."""
    WRITES.sent = []
    try:
        yield WRITES.sent
    finally:
        WRITES.sent = None


class Target:
    """Answers per path: a redirect, a large body, a slow answer, a token-checking API."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.sent: list[tuple[str, str, bytes]] = []
        self.accepted = {"good"}
        self.release = threading.Event()

    def __call__(self, environ, start_response):
        request = Request(environ)
        self.requests.append(request.path)
        self.sent.append((request.method, request.full_path, request.get_data()))
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


def test_each_request_reaches_its_url_also_after_the_pools_were_closed(target):
    app, server = target
    client = target_http({}, FAST)
    for n in range(2):
        answer = client.request(
            "POST", server.url + "/echo", body=b"one", params={"n": str(n)}, what="POST"
        )
        assert answer.status_code == 200
    client.close()  # the target's settings changed: new connections to the same URLs
    assert client.request("PUT", server.url + "/echo", body=b"two", what="PUT").status_code == 200
    assert app.sent[-3:] == [
        ("POST", "/echo?n=0", b"one"),
        ("POST", "/echo?n=1", b"one"),
        ("PUT", "/echo?", b"two"),
    ]


def test_a_request_with_a_body_is_written_once_headers_and_body_together(target):
    app, server = target
    client = target_http({}, FAST)
    client.request("POST", server.url + "/echo", body=b"warm", what="POST")  # connected
    with writes() as sent:
        answer = client.request("POST", server.url + "/echo", body=b'{"a": 1}', what="POST")
    assert answer.status_code == 200
    assert len(sent) == 1
    assert sent[0].startswith(b"POST /echo HTTP/1.1\r\n")
    assert sent[0].endswith(b'\r\n\r\n{"a": 1}')
    assert app.sent[-1] == ("POST", "/echo?", b'{"a": 1}')


def test_a_request_without_a_body_is_written_once(target):
    app, server = target
    client = target_http({}, FAST)
    with writes() as sent:
        assert client.request("GET", server.url + "/plain", what="GET").status_code == 200
    assert len(sent) == 1
    assert sent[0].startswith(b"GET /plain HTTP/1.1\r\n")
    assert sent[0].endswith(b"\r\n\r\n")


def test_a_body_longer_than_one_write_takes_is_written_after_the_headers(target, monkeypatch):
    monkeypatch.setattr(http, "ONE_WRITE_MAX_BODY", 8)
    app, server = target
    client = target_http({}, FAST)
    with writes() as sent:
        client.request("PUT", server.url + "/echo", body=b"0123456789", what="PUT")
    assert sent[1:] == [b"0123456789"]
    assert sent[0].endswith(b"\r\n\r\n")
    assert app.sent[-1] == ("PUT", "/echo?", b"0123456789")


def test_an_https_target_gets_each_request_whole_in_one_write(tmp_path):
    tls = make_server_tls(tmp_path)
    app = Target()
    with serve_tls(app, tls.ssl_context()) as url:
        client = target_http({}, FAST)
        client.pool.connection_pool_kw["ca_certs"] = str(tls.ca_path)  # the test CA only
        bodies = [b'{"n": 1}', b'{"n": 2}']
        with writes() as sent:
            for body in bodies:
                assert client.request("POST", url + "/echo", body=body, what="POST").is_success
    assert [s.rpartition(b"\r\n\r\n")[2] for s in sent] == bodies
    assert app.sent == [("POST", "/echo?", b) for b in bodies]


def test_an_https_target_whose_certificate_is_not_trusted_is_refused(tmp_path):
    tls = make_server_tls(tmp_path)
    app = Target()
    with serve_tls(app, tls.ssl_context()) as url:
        with pytest.raises(TargetError, match="TLS failed") as err:
            target_http({}, FAST).request("POST", url + "/echo", body=b"{}", what="POST")
    assert err.value.retryable
    assert app.sent == []


def test_a_client_that_sent_to_more_urls_than_it_keeps_still_reaches_each(target, monkeypatch):
    monkeypatch.setattr(http, "ROUTES_KEPT", 2)
    app, server = target
    client = target_http({}, FAST)
    paths = ["/a", "/b", "/c", "/a"]
    for path in paths:
        assert client.request("GET", server.url + path, what="GET").status_code == 200
    assert app.requests[-4:] == paths


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


class ShortKeepAlive(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, closing a connection left idle for 0.3 s, as many
    servers do (after longer)."""

    protocol_version = "HTTP/1.1"
    timeout = 0.3
    ports: list[int] = []

    def do_GET(self) -> None:
        self.ports.append(self.client_address[1])
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


def test_a_connection_the_target_closed_while_idle_is_replaced_without_a_failure():
    server = ThreadingHTTPServer(("127.0.0.1", 0), ShortKeepAlive)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/"
    try:
        client = target_http({}, FAST)
        for _ in range(2):
            assert client.request("GET", url, what="GET").status_code == 200
        time.sleep(0.8)  # idle: the target closes the kept-alive connection
        assert client.request("GET", url, what="GET").status_code == 200
    finally:
        server.shutdown()
        server.server_close()
    ports = ShortKeepAlive.ports
    assert ports[0] == ports[1] != ports[2]  # kept alive, then a new connection
