"""Slow and oversized clients do not take the web tier down."""

from __future__ import annotations

import select
import socket
import time
from urllib.parse import urlsplit

import httpx

SLOW_CLIENTS = 8
"""Connections that each hold a half-sent request header: as many as the web tier has threads."""

ANSWER_WITHIN = 3.0
"""Seconds a normal request may take while the slow clients hang on."""

MAX_BODY = 1 << 20
"""BRIDGE_MAX_BODY_BYTES (its default)."""

HUGE_BODY = 100 << 20
CHUNK = 64 << 10

READ_SLACK = 16 << 20
"""Bytes socket buffers on both ends may swallow beyond what the server itself read."""


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=5)


def test_half_sent_headers_do_not_stall_other_requests(bridge):
    url = bridge.stack.url
    slow = []
    try:
        for _ in range(SLOW_CLIENTS):
            sock = _connect(url)
            sock.sendall(b"POST /scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
            slow.append(sock)
        time.sleep(0.5)
        for _ in range(5):
            response = bridge.scim("GET", "/Users?count=1", timeout=ANSWER_WITHIN)
            assert response.status_code == 200
    finally:
        for sock in slow:
            sock.close()


def test_oversized_chunked_body_is_refused_after_reading_about_the_limit(bridge):
    sock = _connect(bridge.stack.url)
    try:
        head = (
            "POST /scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {bridge.stack.scim_token}\r\n"
            "Content-Type: application/scim+json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        sock.sendall(head.encode())
        chunk = f"{CHUNK:x}\r\n".encode() + b" " * CHUNK + b"\r\n"
        sent = 0
        while sent < HUGE_BODY and not select.select([sock], [], [], 0)[0]:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += CHUNK
        if sent >= HUGE_BODY:
            sock.sendall(b"0\r\n\r\n")
        status = _status_line(sock)
    finally:
        sock.close()
    assert b" 413 " in status, status
    assert sent <= MAX_BODY + READ_SLACK, f"the server read {sent >> 20} MiB before refusing"


def _status_line(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    data = b""
    while b"\r\n" not in data:
        piece = sock.recv(4096)
        if not piece:
            break
        data += piece
    return data.split(b"\r\n", 1)[0]


def test_web_tier_answers_health_checks(bridge):
    assert httpx.get(bridge.stack.url + "/healthz", timeout=5).status_code == 200
