"""One log format for web and workers; a line per delivery attempt; no secret in any."""

from __future__ import annotations

import io
import logging

from bridge.observability import logs, request_context
from bridge.runtime.config import Settings
from tests.live_server import serve


def test_a_json_line_has_time_level_logger_message_and_request_id(log_lines):
    with request_context.bound("req-json"):
        logging.getLogger("bridge.test").warning("something %s", "happened")
    (line,) = [e for e in log_lines.all() if e["logger"] == "bridge.test"]
    assert line["message"] == "something happened"
    assert line["level"] == "WARNING"
    assert line["request_id"] == "req-json"
    assert line["time"].startswith("20")


def test_a_line_outside_any_request_has_no_request_id(log_lines):
    logging.getLogger("bridge.test").info("idle")
    (line,) = [e for e in log_lines.all() if e["logger"] == "bridge.test"]
    assert "request_id" not in line


def test_text_format_is_one_human_line_with_the_request_id():
    buffer = io.StringIO()
    logs.configure("text", "INFO", stream=buffer)
    try:
        with request_context.bound("req-text"):
            logging.getLogger("bridge.test").info("hello")
    finally:
        logs.configure("json", "INFO")
    assert buffer.getvalue().strip().endswith("INFO bridge.test [req-text] hello")


def test_the_log_format_is_a_setting_refused_when_unknown():
    assert Settings.from_env({"BRIDGE_LOG_FORMAT": "TEXT"}).log_format == "text"
    assert Settings.from_env({}).log_format == "json"
    try:
        Settings.from_env({"BRIDGE_LOG_FORMAT": "xml"})
    except ValueError as exc:
        assert "BRIDGE_LOG_FORMAT" in str(exc)
    else:
        raise AssertionError("xml accepted")


def test_credentials_in_a_logged_url_are_masked(log_lines):
    logging.getLogger("bridge.test").warning(
        "calling %s", "https://crm.example.com/hook?api_key=s3cr3t&x=1&token=t0k"
    )
    text = log_lines.text
    assert "s3cr3t" not in text and "t0k" not in text
    assert "api_key=***" in text and "x=1" in text


def test_tokens_and_bearer_credentials_are_masked_in_messages_and_fields(log_lines, token):
    logging.getLogger("bridge.test").error(
        "Authorization: Bearer %s", token, extra={"header": f"Bearer {token}", "t": token}
    )
    assert token[5:] not in log_lines.text
    assert "Bearer ***" in log_lines.text


def test_a_traceback_is_masked_too(log_lines):
    try:
        raise RuntimeError("failed at https://u:hunter2@x.example/?password=pw")
    except RuntimeError:
        logging.getLogger("bridge.test").exception("boom")
    assert "hunter2" not in log_lines.text and "password=pw" not in log_lines.text


def test_each_delivery_attempt_is_one_line_with_its_fields_and_request_id(
    hook, create_user, pipeline, log_lines
):
    target = hook()
    user = create_user("req-delivered")
    pipeline.run()
    (line,) = [e for e in log_lines.attempts() if e["resource"] == f"user:{user['id']}"]
    assert line["target"] == "hook" and line["target_id"] == target["id"]
    assert line["action"] == "create"
    assert line["outcome"] == "delivered"
    assert line["status"] == 200 or line["status"] == 204
    assert line["attempt"] == 1
    assert line["request_id"] == "req-delivered"
    assert line["level"] == "INFO"
    assert "next_retry_seconds" not in line


def test_a_failed_attempt_says_its_status_and_next_retry(admin, create_user, pipeline, log_lines):
    failing = _Failing(503)
    with serve(failing) as url:
        _add_down_target(admin, url + "/events?api_key=k3y")
        user = create_user("req-retried")
        pipeline.run()
    lines = [e for e in log_lines.attempts() if e["resource"] == f"user:{user['id']}"]
    first = lines[0]
    assert first["outcome"] == "retry" and first["level"] == "WARNING"
    assert first["status"] == 503 and first["attempt"] == 1
    assert first["next_retry_seconds"] >= 0
    assert first["request_id"] == "req-retried"
    assert lines[-1]["outcome"] == "dead" and lines[-1]["level"] == "ERROR"
    assert [e["attempt"] for e in lines] == list(range(1, len(lines) + 1))
    assert "k3y" not in log_lines.text


def test_above_info_only_failed_attempts_are_logged(admin, hook, create_user, pipeline, log_lines):
    logs.configure("json", "WARNING", stream=log_lines.buffer)
    hook()
    with serve(_Failing(503)) as url:
        _add_down_target(admin, url + "/events")
        user = create_user("req-warning")
        pipeline.run()
    lines = [e for e in log_lines.attempts() if e["resource"] == f"user:{user['id']}"]
    assert {e["target"] for e in lines} == {"down"}
    assert lines[0]["outcome"] == "retry" and lines[0]["status"] == 503
    assert lines[0]["request_id"] == "req-warning" and lines[0]["attempt"] == 1


def _add_down_target(admin, url: str) -> None:
    """A webhook target named ``down`` at ``url``."""
    body = {
        "name": "down",
        "kind": "webhook",
        "url": url,
        "signing_secret": "whsec_" + "A" * 43 + "=",
    }
    assert admin.post("/targets", json=body).status_code == 201


class _Failing:
    """A webhook receiver that answers every request with one status."""

    def __init__(self, status: int) -> None:
        self.status = status

    def __call__(self, environ, start_response):
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response(f"{self.status} Failing", [("Content-Type", "text/plain")])
        return [b"down"]


def test_deliveries_an_admin_request_queues_carry_its_request_id(admin, hook, create_user, app):
    user = create_user()
    target = hook()
    queue = app.extensions["bridge"].queues["bridge"]
    queue.empty()
    headers = {**admin.headers, "X-Request-Id": "admin-sync-1"}
    response = admin.client.post(f"/admin/targets/{target['id']}/sync", headers=headers)
    assert response.status_code in (200, 202), response.json
    (job,) = queue.jobs
    assert job.kwargs["origins"] == {f"user:{user['id']}": "admin-sync-1"}


def test_deliveries_of_a_resync_log_the_runs_id(
    admin, hook, create_user, redis_client, pipeline, log_lines
):
    hook()
    pipeline.run()
    user = create_user()
    redis_client.xtrim("bridge:changes", 0)  # a change the dispatchers never saw
    response = admin.post("/resync", json={"mode": "targets"})
    assert response.status_code in (200, 202), response.json
    pipeline.run()
    run = admin.get("/resync").json
    (line,) = [e for e in log_lines.attempts() if e["resource"] == f"user:{user['id']}"]
    assert line["request_id"] == f"resync-{run['current']['id']}"
