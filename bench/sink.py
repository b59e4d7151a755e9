"""A fast downstream target for the fan-out benchmark: records when each delivery arrived.

    python -m bench.sink --mode webhook --port 8081 --out hook.tsv
    python -m bench.sink --mode scim --port 8082 --out scim.tsv

One asyncio process, HTTP/1.1 with keep-alive, requests framed by ``Content-Length``.
Every delivery is recorded as one line ``<time.time()>\\t<kind>\\t<key>`` when its request
has been read in full; lines are buffered and written every FLUSH_SECONDS and on exit.

* ``webhook``: any POST is answered 204. ``kind`` is the event type (``user.created`` …),
  ``key`` the resource's ``userName`` (``displayName`` for groups, else ``data.id``).
  Signatures are not checked: the sink must cost as little CPU as possible.
* ``scim``: a minimal SCIM 2.0 service provider for the bridge's outbound connector.
  ``GET /ServiceProviderConfig`` (PATCH supported), ``GET /Users?filter=…`` and
  ``GET /Groups?filter=…`` list nothing (so every account is new), ``POST /Users`` and
  ``POST /Groups`` answer 201 with a fresh id, ``PATCH`` 204, ``PUT`` 200, ``DELETE`` 204.
  Writes are recorded (``user.create`` with the ``userName``, ``user.patch`` with the
  remote id, …); lookups are not.

``--delay S`` answers every request S seconds after it arrived (a slow target); the
receipt is still recorded on arrival.

SIGTERM or SIGINT stops the server after a last flush.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
import sys
import time
from pathlib import Path

import orjson

FLUSH_SECONDS = 0.05
MAX_HEADER_BYTES = 65536
MAX_BODY_BYTES = 8 << 20

LIST_RESPONSE = orjson.dumps(
    {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 0,
        "startIndex": 1,
        "itemsPerPage": 0,
        "Resources": [],
    }
)
SERVICE_PROVIDER_CONFIG = orjson.dumps(
    {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": 100},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": False},
        "authenticationSchemes": [],
    }
)
STATUS_TEXT = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 404: "Not Found"}


def response(status: int, body: bytes = b"", extra: str = "") -> bytes:
    head = f"HTTP/1.1 {status} {STATUS_TEXT.get(status, 'OK')}\r\n"
    if body:
        head += "Content-Type: application/scim+json\r\n"
    head += f"Content-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


class Recorder:
    def __init__(self, path: Path) -> None:
        self.file = open(path, "a", buffering=1 << 20)  # noqa: SIM115 - closed in close()
        self.lines: list[str] = []
        self.count = 0

    def add(self, at: float, kind: str, key: str) -> None:
        self.lines.append(f"{at:.6f}\t{kind}\t{key}\n")
        self.count += 1

    def flush(self) -> None:
        if self.lines:
            self.file.write("".join(self.lines))
            self.lines.clear()
        self.file.flush()

    def close(self) -> None:
        self.flush()
        self.file.close()


class Handler:
    """What the sink answers, and records, for one complete request."""

    def __init__(self, mode: str, recorder: Recorder) -> None:
        self.mode = mode
        self.recorder = recorder
        self.ids = itertools.count(1)

    def __call__(self, method: str, target: str, body: bytes, at: float) -> bytes:
        if self.mode == "webhook":
            return self.webhook(method, body, at)
        return self.scim(method, target, body, at)

    def webhook(self, method: str, body: bytes, at: float) -> bytes:
        if method != "POST":
            return response(404)
        try:
            event = orjson.loads(body)
            data = event.get("data") or {}
            resource = data.get("resource") or {}
            key = resource.get("userName") or resource.get("displayName") or data.get("id", "")
            self.recorder.add(at, str(event.get("type", "?")), str(key))
        except (orjson.JSONDecodeError, AttributeError):
            return response(400)
        return response(204)

    def scim(self, method: str, target: str, body: bytes, at: float) -> bytes:
        path = target.split("?", 1)[0].rstrip("/")
        endpoint = path.rsplit("/", 2)
        if method == "GET":
            if path.endswith("/ServiceProviderConfig"):
                return response(200, SERVICE_PROVIDER_CONFIG)
            if path.endswith(("/Users", "/Groups")):
                return response(200, LIST_RESPONSE)
            return response(404)
        kind = "group" if "/Groups" in path else "user"
        if method == "POST" and path.endswith(("/Users", "/Groups")):
            try:
                resource = orjson.loads(body)
            except orjson.JSONDecodeError:
                return response(400)
            key = resource.get("userName") or resource.get("displayName") or ""
            self.recorder.add(at, f"{kind}.create", str(key))
            rid = f"r{next(self.ids)}"
            resource["id"] = rid
            base = "/Groups" if kind == "group" else "/Users"
            return response(201, orjson.dumps(resource), f"Location: {base}/{rid}\r\n")
        remote_id = endpoint[-1]
        if method == "PATCH":
            self.recorder.add(at, f"{kind}.patch", remote_id)
            return response(204)
        if method == "PUT":
            self.recorder.add(at, f"{kind}.put", remote_id)
            return response(200, body)
        if method == "DELETE":
            self.recorder.add(at, f"{kind}.delete", remote_id)
            return response(204)
        return response(404)


class HttpProtocol(asyncio.Protocol):
    def __init__(self, handler: Handler, delay: float = 0.0) -> None:
        self.handler = handler
        self.delay = delay
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        out = []
        close = False
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                close = len(self.buf) > MAX_HEADER_BYTES
                break
            head = bytes(self.buf[:end]).decode("latin-1")
            lines = head.split("\r\n")
            try:
                method, target, _ = lines[0].split(" ", 2)
            except ValueError:
                out.append(response(400, extra="Connection: close\r\n"))
                close = True
                break
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "connection" and value.strip().lower() == "close":
                    close = True
                elif name == "transfer-encoding":
                    length = -1
            if length < 0 or length > MAX_BODY_BYTES:
                out.append(response(400, extra="Connection: close\r\n"))
                close = True
                break
            if len(self.buf) < end + 4 + length:
                break
            body = bytes(self.buf[end + 4 : end + 4 + length])
            del self.buf[: end + 4 + length]
            out.append(self.handler(method, target, body, time.time()))
            if close:
                break
        if self.delay > 0:
            asyncio.get_running_loop().call_later(self.delay, self._answer, out, close)
        else:
            self._answer(out, close)

    def _answer(self, out: list[bytes], close: bool) -> None:
        if self.transport.is_closing():
            return
        if out:
            self.transport.write(b"".join(out))
        if close:
            self.transport.close()


async def serve(mode: str, port: int, out: Path, delay: float = 0.0) -> None:
    recorder = Recorder(out)
    handler = Handler(mode, recorder)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await loop.create_server(
        lambda: HttpProtocol(handler, delay), "127.0.0.1", port, backlog=1024, reuse_address=True
    )
    print(f"sink {mode} listening on 127.0.0.1:{port}", flush=True)
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), FLUSH_SECONDS)
            except TimeoutError:
                pass
            recorder.flush()
    finally:
        server.close()
        recorder.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.sink", description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=["webhook", "scim"], required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", type=Path, required=True, help="file the receipts are appended to")
    p.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    args = p.parse_args(argv)
    asyncio.run(serve(args.mode, args.port, args.out, args.delay))
    return 0


if __name__ == "__main__":
    sys.exit(main())
