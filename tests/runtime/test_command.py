"""The ``bridge`` command: installed with the project, it finds the bridge's environment by
itself, and says in one line what is wrong with it."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import sysconfig
import tomllib
from importlib.metadata import distributions
from pathlib import Path

import pytest

from bridge.runtime import command, envfile
from bridge.runtime.embedded_redis import free_port

REPO = Path(__file__).resolve().parents[2]

CLEAN_ENV = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
"""A new shell: no venv activated, no bridge variable exported (this checkout's code)."""


def test_pyproject_installs_the_bridge_command():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["bridge"].partition(":")
    assert getattr(importlib.import_module(module), name) is command.main


def test_a_new_shell_reaches_the_bridge_through_var_bridge_env(
    tmp_path, redis_server, redis_client
):
    envfile.write(tmp_path / "var", {"REDIS_URL": redis_server.url})
    result = subprocess.run(
        [sys.executable, "-m", "bridge.runtime.command", "targets", "list"],
        cwd=tmp_path, env=CLEAN_ENV, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (0, "none\n"), result.stderr


def test_the_installed_command_runs_from_any_directory(tmp_path):
    script = Path(sys.executable).parent / "bridge"
    installed = [  # the venv's copy, not the egg-info that an editable build leaves here
        d for d in distributions(path=[sysconfig.get_paths()["purelib"]])
        if d.metadata["Name"] == "entra-scim-bridge"
    ]  # fmt: skip
    url = json.loads((installed[0].read_text("direct_url.json") or "{}") if installed else "{}")
    if not script.exists() or url.get("url") != REPO.as_uri():
        pytest.skip("the project is not installed from this checkout (scripts/install.sh does it)")
    result = subprocess.run(
        [str(script), "--help"], cwd=tmp_path, env={"PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "targets" in result.stdout and "resync" in result.stdout


def run_main(monkeypatch, capsys, cwd: Path, env: dict[str, str], *args: str):
    for name in list(__import__("os").environ):
        if name.startswith("BRIDGE_") or name == "REDIS_URL":
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(cwd)
    with pytest.raises(SystemExit) as exited:
        command.main(list(args))
    return exited.value.code, capsys.readouterr()


def test_a_bad_setting_is_one_line_and_exit_status_2(monkeypatch, capsys, tmp_path):
    code, out = run_main(
        monkeypatch, capsys, tmp_path, {"BRIDGE_MAX_BACKLOG": "lots"}, "targets", "list"
    )
    assert code == 2
    assert out.err == "bridge: bad setting: BRIDGE_MAX_BACKLOG must be a whole number, not 'lots'\n"


def test_a_stopped_bridge_is_one_line_naming_its_env_file(monkeypatch, capsys, tmp_path):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    envfile.write(tmp_path / "var", {"REDIS_URL": dead, "BRIDGE_REDIS_TIMEOUT_SECONDS": "1"})
    code, out = run_main(monkeypatch, capsys, tmp_path, {}, "tokens", "list")
    assert code == 1
    assert out.err.startswith(
        f"Error: cannot reach Redis at {dead} (REDIS_URL from var/bridge.env)"
    )
    assert len(out.err.strip().splitlines()) == 1
    assert "Traceback" not in out.err


def test_a_local_data_folder_without_its_env_file_is_refused(monkeypatch, capsys, tmp_path):
    (tmp_path / "var" / "redis").mkdir(parents=True)
    code, out = run_main(monkeypatch, capsys, tmp_path, {}, "targets", "list")
    assert code == 2
    assert "REDIS_URL is not set, and var/redis holds an embedded Redis's data" in out.err
