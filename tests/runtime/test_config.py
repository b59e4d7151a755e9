"""A bad setting is an error that names it (bridge.runtime.config.SettingError)."""

from __future__ import annotations

import pytest

from bridge.runtime.config import SettingError, Settings


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BRIDGE_RETRY_MAX_ATTEMPTS": "eight"}, "BRIDGE_RETRY_MAX_ATTEMPTS must be a whole number, not 'eight'"),
        ({"BRIDGE_REDIS_TIMEOUT_SECONDS": "5s"}, "BRIDGE_REDIS_TIMEOUT_SECONDS must be a number, not '5s'"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL must start with redis://"),
        ({"BRIDGE_GRAPH_PAGE_SIZE": "many"}, "BRIDGE_GRAPH_PAGE_SIZE is invalid"),
        ({"BRIDGE_EXTENSION_SCHEMAS": "/nonexistent.json"}, "BRIDGE_EXTENSION_SCHEMAS: cannot read /nonexistent.json"),
        ({"BRIDGE_LOG_FORMAT": "xml"}, "BRIDGE_LOG_FORMAT must be one of"),
    ],
)  # fmt: skip
def test_a_bad_setting_names_itself(env, message):
    with pytest.raises(SettingError) as caught:
        Settings.from_env(env)
    assert message in str(caught.value)


def test_a_password_in_a_bad_redis_url_is_masked():
    with pytest.raises(SettingError) as caught:
        Settings.from_env({"REDIS_URL": "http://user:hunter2@redis:6379"})
    assert "hunter2" not in str(caught.value)


def test_an_empty_number_setting_means_its_default():
    assert (
        Settings.from_env({"BRIDGE_WORKER_THREADS": ""}).worker_threads == Settings.worker_threads
    )
