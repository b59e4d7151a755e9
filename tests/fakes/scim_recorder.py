"""A WSGI middleware in front of a SCIM service provider: records every request the bridge
sends it, and can fail, lose or refuse requests the way real targets do."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import orjson
from werkzeug.wrappers import Response

SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: dict | None
    headers: dict[str, str]
    status: int | None = None


@dataclass
class ScimRecorder:
    """Wraps ``app``. ``fail_next`` requests (of method ``fail_method`` if set) are answered
    ``fail_status`` without reaching it; ``lose_next`` reach it but their answer is replaced
    by a 504 (the target acted, the bridge never heard); ``no_patch`` makes the target
    advertise ``patch.supported: false`` and refuse PATCH; ``strict_removals`` makes a
    PATCH that removes a member the group does not list fail with ``noTarget`` (RFC 7644
    §3.12), as strict service providers answer."""

    app: object
    requests: list[Recorded] = field(default_factory=list)
    fail_next: int = 0
    fail_status: int = 500
    fail_method: str | None = None
    lose_next: int = 0
    lose_method: str | None = None
    no_patch: bool = False
    strict_removals: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        method = environ["REQUEST_METHOD"]
        entry = Recorded(
            method=method,
            path=environ.get("PATH_INFO", ""),
            query={k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()},
            body=orjson.loads(raw) if raw else None,
            headers={
                name: environ.get("HTTP_" + name.upper().replace("-", "_"), "")
                for name in ("Idempotency-Key", "Accept", "Authorization")
            }
            | {"Content-Type": environ.get("CONTENT_TYPE", "")},
        )
        with self.lock:
            self.requests.append(entry)
            fail = self._take("fail", method)
            lose = not fail and self._take("lose", method)
        if fail:
            return self._answer(entry, _error(self.fail_status), environ, start_response)
        if self.no_patch and method == "PATCH":
            return self._answer(entry, _error(501), environ, start_response)
        if self.no_patch and entry.path.endswith("/ServiceProviderConfig"):
            body = {"schemas": [], "patch": {"supported": False}}
            response = Response(orjson.dumps(body), 200, content_type="application/scim+json")
            return self._answer(entry, response, environ, start_response)
        if self.strict_removals and method == "PATCH" and self._removes_a_non_member(entry):
            body = {"schemas": [SCIM_ERROR], "status": "400", "scimType": "noTarget"}
            response = Response(orjson.dumps(body), 400, content_type="application/scim+json")
            return self._answer(entry, response, environ, start_response)
        if lose:
            Response.from_app(self.app, environ)  # the target does the work...
            return self._answer(entry, _error(504), environ, start_response)  # ...unheard
        statuses = []

        def recording_start(status, headers, exc_info=None):
            statuses.append(int(status.split()[0]))
            return start_response(status, headers, exc_info)

        result = self.app(environ, recording_start)
        entry.status = statuses[0] if statuses else None
        return result

    def _removes_a_non_member(self, entry: Recorded) -> bool:
        removed = [
            op["path"].split('"')[1]
            for op in (entry.body or {}).get("Operations", [])
            if op.get("op") == "remove" and op.get("path", "").startswith("members[")
        ]
        if not removed:
            return False
        auth = entry.headers["Authorization"]
        group = self.app.test_client().get(entry.path, headers={"Authorization": auth}).json
        listed = {m["value"] for m in group.get("members") or []}
        return any(ref not in listed for ref in removed)

    def _take(self, what: str, method: str) -> bool:
        wanted = getattr(self, f"{what}_method")
        if getattr(self, f"{what}_next") > 0 and wanted in (None, method):
            setattr(self, f"{what}_next", getattr(self, f"{what}_next") - 1)
            return True
        return False

    def _answer(self, entry: Recorded, response: Response, environ, start_response):
        entry.status = response.status_code
        return response(environ, start_response)

    # --- reading what was sent ------------------------------------------------------------
    def calls(self) -> list[tuple[str, str]]:
        """(method, path) of every request, in order."""
        return [(r.method, r.path) for r in self.requests]

    def writes(self) -> list[Recorded]:
        """Every request but reads."""
        return [r for r in self.requests if r.method != "GET"]

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()


def _error(status: int) -> Response:
    body = {"schemas": [SCIM_ERROR], "status": str(status), "detail": "injected failure"}
    return Response(orjson.dumps(body), status, content_type="application/scim+json")
