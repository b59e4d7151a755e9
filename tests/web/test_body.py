"""The body cap is enforced while the body is read, chunked bodies included, on /scim and /admin.

Against a real threaded server: a raw socket streams a 100 MB chunked body and stops at
the first byte of the answer, which must be a 413 that came after about the cap.
"""

from __future__ import annotations

import json
import select
import socket
from dataclasses import replace
from urllib.parse import urlsplit

import pytest

from app import create_app
from tests.factories import entra_user
from tests.live_server import serve

CAP = 64 * 1024
CHUNK = 64 * 1024
TOTAL = 100 * 1024 * 1024


class CountingInput:
    """Counts the bytes the app takes from the server's input stream."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.taken = 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.taken += len(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        data = self.stream.readline(size)
        self.taken += len(data)
        return data


class Counted:
    """WSGI wrapper of the app that remembers how much of each body it read."""

    def __init__(self, app) -> None:
        self.app = app
        self.inputs: list[CountingInput] = []

    def __call__(self, environ, start_response):
        counting = CountingInput(environ["wsgi.input"])
        self.inputs.append(counting)
        environ["wsgi.input"] = counting
        return self.app(environ, start_response)


@pytest.fixture
def capped(settings, redis_client):
    app = create_app(replace(settings, max_body_bytes=CAP))
    yield app
    app.extensions["bridge"].redis.close()


def stream_chunked(base: str, path: str, token: str) -> tuple[int, bytes]:
    """POST a TOTAL-byte chunked body; return how much was sent when the answer came."""
    url = urlsplit(base)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(
            (
                f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\n\r\n"
            ).encode()
        )
        chunk = f"{CHUNK:x}\r\n".encode() + b" " * CHUNK + b"\r\n"
        sent = 0
        while sent < TOTAL:
            readable, writable, _ = select.select([sock], [sock], [], 10)
            if readable:
                break
            if writable:
                sock.sendall(chunk)
                sent += CHUNK
        return sent, read_response(sock)


def read_response(sock: socket.socket) -> bytes:
    """The status line, headers and the Content-Length bytes of body that follow."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def response_body(answer: bytes) -> dict:
    return json.loads(answer.partition(b"\r\n\r\n")[2])


def test_chunked_scim_body_past_the_cap_is_refused_after_reading_about_the_cap(capped):
    _, token = capped.extensions["bridge"].tokens.create("tests")
    counted = Counted(capped)
    with serve(counted, quiet=True) as base:
        sent, answer = stream_chunked(base, "/scim/v2/Users", token)
    assert answer.startswith(b"HTTP/1.1 413")
    assert sent < TOTAL / 4
    assert counted.inputs[0].taken <= CAP + 1
    body = response_body(answer)
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert body["status"] == "413"


def test_chunked_admin_body_past_the_cap_is_refused_after_reading_about_the_cap(capped):
    _, token = capped.extensions["bridge"].admin_tokens.create("tests")
    counted = Counted(capped)
    with serve(counted, quiet=True) as base:
        sent, answer = stream_chunked(base, "/admin/targets", token)
    assert answer.startswith(b"HTTP/1.1 413")
    assert sent < TOTAL / 4
    assert counted.inputs[0].taken <= CAP + 1
    assert response_body(answer)["code"] == 413


def test_declared_length_past_the_cap_is_refused_before_reading(capped):
    _, token = capped.extensions["bridge"].tokens.create("tests")
    counted = Counted(capped)
    response = counted_client(counted).post(
        "/scim/v2/Users",
        data=b" " * (CAP + 1),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"},
    )
    assert response.status_code == 413
    assert counted.inputs[0].taken == 0


def test_body_of_exactly_the_cap_is_read(capped):
    _, token = capped.extensions["bridge"].tokens.create("tests")
    data = json.dumps(entra_user()).encode()
    data += b" " * (CAP - len(data))
    response = capped.test_client().post(
        "/scim/v2/Users",
        data=data,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"},
    )
    assert response.status_code == 201


def counted_client(counted: Counted):
    from werkzeug.test import Client

    return Client(counted)
