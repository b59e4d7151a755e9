"""Serve a WSGI app on 127.0.0.1 in a background thread, with a thread per request."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from werkzeug.serving import WSGIRequestHandler, make_server


class QuietHandler(WSGIRequestHandler):
    """No access log on stderr, for fakes that keep their own request log."""

    def log_request(self, *args, **kwargs) -> None:
        pass


@contextmanager
def serve(app, *, ssl_context: ssl.SSLContext | None = None, quiet: bool = False) -> Iterator[str]:
    """Yield the base URL (https with ``ssl_context``) of a threaded server running ``app``."""
    server = make_server(
        "127.0.0.1",
        0,
        app,
        threaded=True,
        ssl_context=ssl_context,
        request_handler=QuietHandler if quiet else None,
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    scheme = "https" if ssl_context else "http"
    try:
        yield f"{scheme}://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
