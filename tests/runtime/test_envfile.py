"""var/bridge.env: written by serve, read by the ``bridge`` command (bridge.runtime.envfile)."""

from __future__ import annotations

import stat

import pytest

from bridge.runtime import envfile
from bridge.runtime.envfile import EMBEDDED_MARK, SettingError


def write(tmp_path, **values: str):
    return envfile.write(tmp_path / "var", values)


def test_the_file_is_private_and_holds_only_redis_url_and_bridge_settings(tmp_path):
    path = write(tmp_path, REDIS_URL="redis://127.0.0.1:6390/0", BRIDGE_KEY_PREFIX="b", PATH="/x")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert envfile.read(path) == {"REDIS_URL": "redis://127.0.0.1:6390/0", "BRIDGE_KEY_PREFIX": "b"}


def test_the_working_directorys_env_file_completes_the_environment(tmp_path):
    write(tmp_path, REDIS_URL="redis://127.0.0.1:6391/0", BRIDGE_KEY_PREFIX="b")
    found = envfile.resolve({"BRIDGE_LOG_LEVEL": "DEBUG"}, tmp_path)
    assert found.values == {
        "REDIS_URL": "redis://127.0.0.1:6391/0",
        "BRIDGE_KEY_PREFIX": "b",
        "BRIDGE_LOG_LEVEL": "DEBUG",
    }
    assert found.redis_source == "REDIS_URL from var/bridge.env"


def test_a_redis_url_chosen_by_hand_wins_and_the_file_is_not_read(tmp_path):
    write(tmp_path, REDIS_URL="redis://127.0.0.1:6391/0", BRIDGE_KEY_PREFIX="b")
    found = envfile.resolve({"REDIS_URL": "redis://redis.internal:6379/0"}, tmp_path)
    assert found.values == {"REDIS_URL": "redis://redis.internal:6379/0"}
    assert found.redis_source == "REDIS_URL"


def test_a_stale_redis_url_loaded_from_the_file_gives_way_to_the_files_current_one(tmp_path):
    write(tmp_path, REDIS_URL="redis://127.0.0.1:41234/0")
    stale = "redis://127.0.0.1:6390/0"
    found = envfile.resolve({"REDIS_URL": stale, EMBEDDED_MARK: stale}, tmp_path)
    assert found.values["REDIS_URL"] == "redis://127.0.0.1:41234/0"


def test_a_data_folder_with_redis_data_but_no_env_file_is_refused(tmp_path):
    (tmp_path / "var" / "redis").mkdir(parents=True)
    with pytest.raises(SettingError, match="REDIS_URL is not set, and var/redis holds"):
        envfile.resolve({}, tmp_path)


def test_nothing_local_falls_back_to_the_default_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(envfile, "PROJECT_ROOT", tmp_path / "elsewhere")
    found = envfile.resolve({}, tmp_path)
    assert "REDIS_URL" not in found.values
    assert "using redis://127.0.0.1:6379/0" in found.note


def test_bridge_data_dir_names_the_folder_to_read(tmp_path):
    envfile.write(tmp_path / "data", {"REDIS_URL": "redis://127.0.0.1:6392/0"})
    found = envfile.resolve({"BRIDGE_DATA_DIR": "data"}, tmp_path)
    assert found.values["REDIS_URL"] == "redis://127.0.0.1:6392/0"


def test_the_embedded_mark_says_where_redis_url_came_from():
    url = "redis://127.0.0.1:6390/0"
    assert envfile.came_from_env_file({"REDIS_URL": url, EMBEDDED_MARK: url})
    assert envfile.came_from_env_file({"REDIS_URL": url, EMBEDDED_MARK: "1"})  # older files
    assert not envfile.came_from_env_file({"REDIS_URL": "redis://other:6379/0", EMBEDDED_MARK: url})
    assert not envfile.came_from_env_file({"REDIS_URL": url})
