"""Request ids, SCIM metrics and the audit trail on every request; ``/metrics``.

Every response carries ``X-Request-Id``: the client's when it is sane (see
:func:`bridge.observability.request_context.accept`), else a new one. While the request runs the
id is the current one, so its log lines carry it and a directory write puts it in the
change-stream entry it appends. A ``/scim`` request is counted and timed, and appended to
the audit trail; none of this costs a Redis round trip.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, Request, Response, current_app, g, request

from bridge.observability import metrics, request_context, scrape
from bridge.observability.audit_log import AuditLog, body_text, now_iso, response_text
from bridge.observability.masking import mask_text
from bridge.web.scim_paths import SCIM_PREFIX

EXTENSION_KEY = "bridge_observe"

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def init_app(app: Flask, services: Any, api: Any) -> None:
    """Install the hooks, ``/metrics`` (served only when BRIDGE_METRICS_TOKEN is set), and
    the audit trail's admin endpoint and CLI."""
    from bridge.admin.audit_trail import audit_cli
    from bridge.admin.audit_trail import blp as audit_blp

    settings = services.settings
    app.extensions[EXTENSION_KEY] = {
        "audit": AuditLog(services.redis, settings.key_prefix, settings.audit_max_entries),
        "token": scrape.TokenCheck(settings.metrics_token),
        "registry": scrape.registry(settings.metrics_dir, services),
    }
    # first: authentication failures get a request id too
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_finish)
    app.teardown_request(_forget)
    app.add_url_rule("/metrics", "metrics", _metrics)
    api.register_blueprint(audit_blp)
    app.cli.add_command(audit_cli)


def audit_log(app: Flask) -> AuditLog:
    """The app's audit log of SCIM requests."""
    audit: AuditLog = app.extensions[EXTENSION_KEY]["audit"]
    return audit


def _start() -> None:
    state = g._get_current_object()
    state.started = time.perf_counter()
    # from the environ: request.headers.get raises and catches when, as usual, it is absent
    state.request_id = request_context.accept(request.environ.get(request_context.ENVIRON_KEY))
    request_context.set_current(state.request_id)


def _finish(response: Response) -> Response:
    # the request and g are bound once: each use of Flask's proxies is a context lookup
    req: Request = request._get_current_object()  # type: ignore[attr-defined]
    state = g._get_current_object()
    request_id = state.get("request_id")
    if request_id:  # set by this hook alone
        response.headers.add(request_context.HEADER, request_id)
    path = req.path
    if path.startswith(SCIM_PREFIX) and "started" in state:
        seconds = time.perf_counter() - state.started
        metrics.observe_request(req.method, path, response.status_code, seconds)
        audit = current_app.extensions[EXTENSION_KEY]["audit"]
        if audit.enabled:
            audit.append(_entry(req, state, response, path, request_id, seconds))
    return response


def _forget(_exc: BaseException | None = None) -> None:
    request_context.set_current(None)


def _entry(
    req: Request,
    state: Any,
    response: Response,
    path: str,
    request_id: str | None,
    seconds: float,
) -> dict[str, Any]:
    """One audit entry: what was asked, by whom, and what was answered."""
    resource_type = metrics.scim_resource(path)
    rest = path[len(SCIM_PREFIX) + 1 :].split("/")
    resource_id = rest[1] if len(rest) > 1 and resource_type in ("Users", "Groups") else None
    if resource_id == ".search":
        resource_id = None
    status = response.status_code
    if resource_id is None and status == 201:
        resource_id = (response.headers.get("Location") or "").rstrip("/").rsplit("/", 1)[-1]
    token = state.get("scim_token")
    method = req.method
    entry: dict[str, Any] = {
        "at": now_iso(),
        "method": method,
        "path": path,
        "query": None,
        "status": status,
        "latency_ms": round(seconds * 1000, 2),
        "resource_type": resource_type,
        "resource_id": resource_id or None,
        "token_id": token.id if token else None,
        "token_name": token.name if token else None,
        "client_ip": req.remote_addr,
        "request_id": request_id,
    }
    is_write = method in WRITE_METHODS
    if is_write or path.endswith("/.search"):
        entry["request_body"] = body_text(None, state.get("scim_body"))
    if status >= 400 or is_write:
        if not response.is_streamed and status not in (204, 304):
            text = response_text(response.get_data())
            entry["response_body"] = mask_text(text) if status >= 400 and text else text
    query = req.query_string.decode("latin-1")
    if query:
        entry["query"] = mask_text("?" + query)[1:]
    return entry


def _metrics() -> Response:
    """The Prometheus text format; 404 unless a metrics token is configured, 401 without
    it (SCIM and admin tokens are not accepted)."""
    state = current_app.extensions[EXTENSION_KEY]
    check: scrape.TokenCheck = state["token"]
    if not check.configured:
        return Response("not found\n", 404, mimetype="text/plain")
    if not check.allows(request.headers.get("Authorization")):
        return Response(
            "a valid metrics token is required\n",
            401,
            {"WWW-Authenticate": 'Bearer realm="metrics"'},
            mimetype="text/plain",
        )
    body, content_type = scrape.exposition(state["registry"])
    return Response(body, 200, content_type=content_type)
