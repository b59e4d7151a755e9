"""List commands print a header row, or ``none``; an unreachable Redis is one line."""

from __future__ import annotations

import dataclasses
import json

from app import create_app
from bridge.runtime.embedded_redis import free_port
from tests.admin.test_cli import add_hook, run
from tests.factories import entra_user


def test_targets_list_says_none_when_there_are_none(app):
    assert run(app, "targets", "list").output == "none\n"


def test_targets_list_starts_with_a_header_row(app):
    add_hook(app)
    lines = run(app, "targets", "list").output.splitlines()
    assert lines[0].split("\t")[:3] == ["name", "id", "kind"]
    assert lines[1].startswith("hook\t")


def test_held_says_none_when_nothing_is_held(app):
    add_hook(app)
    assert run(app, "targets", "held", "hook").output == "none\n"


def test_deliveries_lists_the_log_newest_first_with_a_header(app, scim, pipeline, receiver):
    result = run(
        app, "targets", "add", "--name", "hook", "--kind", "webhook", "--url",
        receiver.url + "/events", "--signing-secret-file", "-", input=receiver.secret,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    user = scim.post("/Users", json=entra_user()).json
    pipeline.run()
    lines = run(app, "targets", "deliveries", "hook").output.splitlines()
    assert lines[0] == "at\titem\taction\toutcome\tstatus\tattempts\tms\terror"
    fields = lines[1].split("\t")
    assert fields[1:4] == [f"user:{user['id']}", "create", "delivered"]


def test_deliveries_json_prints_one_object_per_line(app, scim, pipeline, receiver):
    run(
        app, "targets", "add", "--name", "hook", "--kind", "webhook", "--url",
        receiver.url + "/events", "--signing-secret-file", "-", input=receiver.secret,
    )  # fmt: skip
    scim.post("/Users", json=entra_user())
    pipeline.run()
    output = run(app, "targets", "deliveries", "hook", "--json").output
    entries = [json.loads(line) for line in output.splitlines()]
    assert [e["outcome"] for e in entries] == ["delivered"]


def test_deliveries_says_none_for_a_new_target(app):
    add_hook(app, "--disabled")
    assert run(app, "targets", "deliveries", "hook").output == "none\n"


def test_an_unreachable_redis_is_one_line_naming_redis_url(settings, redis_client):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(dataclasses.replace(settings, redis_url=dead, redis_timeout_seconds=1))
    for command in (["targets", "list"], ["resync", "status"], ["targets", "show", "x"]):
        result = run(app, *command)
        assert result.exit_code == 1, command
        assert result.output.startswith(f"Error: cannot reach Redis at {dead} (REDIS_URL)")
        assert len(result.output.strip().splitlines()) == 1, result.output
