"""A fake of Entra's federation metadata endpoint
(``/{tenant}/federationmetadata/2007-06/federationmetadata.xml?appid=…``), served over TLS
by :func:`tests.fakes.graph_tls.serve_tls`: the document it serves can be changed (a
certificate rollover), made to fail with a status, or padded past any size cap."""

from __future__ import annotations

from dataclasses import dataclass, field

from werkzeug.wrappers import Request, Response


@dataclass
class FakeFederationMetadata:
    """WSGI app serving ``document`` at any path; ``requests`` counts what it answered."""

    document: str = ""
    status: int = 200
    pad_bytes: int = 0
    """Extra bytes after the document (a comment), to exceed a size cap."""
    requests: list[str] = field(default_factory=list)

    def __call__(self, environ, start_response):
        request = Request(environ)
        self.requests.append(request.full_path)
        body = self.document.encode()
        if self.pad_bytes:
            body += b"<!--" + b"x" * self.pad_bytes + b"-->"
        response = Response(body, status=self.status, mimetype="application/xml")
        return response(environ, start_response)

    def path(self, tenant_id: str, app_id: str) -> str:
        """Entra's path for one enterprise application's metadata."""
        return f"/{tenant_id}/federationmetadata/2007-06/federationmetadata.xml?appid={app_id}"
