"""``var/bridge.env``: the settings a local bridge runs with, kept for its CLI.

``python -m bridge.runtime.serve`` writes it (mode 0600) with ``REDIS_URL`` and every
``BRIDGE_*`` setting of the run; the ``bridge`` command reads it, so that a new shell
needs neither an activated venv nor exported variables. Beside an embedded Redis's URL it
writes :data:`EMBEDDED_MARK` with the same URL: a ``REDIS_URL`` equal to the mark came
from such a file (a shell that loaded it), and means "the embedded one", not an external
Redis that someone chose.

Where the CLI looks (:func:`resolve`), when ``REDIS_URL`` was not set by hand:
``$BRIDGE_DATA_DIR/bridge.env`` when that is set, else ``./var/bridge.env``, else the one
in the project's own ``var/``. A data folder with an embedded Redis's data but no
``bridge.env`` is an error, not a silent fall-back to ``redis://127.0.0.1:6379/0``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ENV_FILE = "bridge.env"
"""The file's name in the data folder."""

EMBEDDED_MARK = "BRIDGE_EMBEDDED_REDIS"
"""Written beside an embedded Redis's REDIS_URL, with the same URL (``1`` in older files)."""

DEFAULT_DATA_DIR = "var"

PROJECT_ROOT = Path(__file__).resolve().parents[2]
"""Where app.py is: the bridge's own ``var/`` is found from any working directory."""


class SettingError(ValueError):
    """The environment cannot be used as it is; the message names the setting."""


@dataclass(frozen=True)
class Found:
    """The environment to run with, and where its REDIS_URL came from (for messages)."""

    values: dict[str, str]
    redis_source: str
    note: str = ""


def write(data_dir: Path, env: Mapping[str, str]) -> Path:
    """Write REDIS_URL and the BRIDGE_* settings of ``env`` (mode 0600); return the path."""
    path = data_dir / ENV_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    names = sorted(n for n in env if n == "REDIS_URL" or n.startswith("BRIDGE_"))
    path.touch(mode=0o600)
    path.write_text("".join(f"{n}={env[n]}\n" for n in names))
    return path


def read(path: Path) -> dict[str, str]:
    """The ``NAME=value`` lines of an env file."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {name.strip(): value for name, value in pairs if not name.startswith("#")}


def came_from_env_file(env: Mapping[str, str]) -> bool:
    """Whether REDIS_URL is an embedded Redis's, loaded from a bridge.env (not chosen)."""
    url, mark = env.get("REDIS_URL"), env.get(EMBEDDED_MARK)
    return url is not None and mark is not None and mark in (url, "1")


def candidates(env: Mapping[str, str], cwd: Path) -> list[Path]:
    """The data folders the CLI looks in, in order."""
    if env.get("BRIDGE_DATA_DIR"):
        return [cwd / env["BRIDGE_DATA_DIR"]]
    found = [cwd / DEFAULT_DATA_DIR, PROJECT_ROOT / DEFAULT_DATA_DIR]
    return [p for i, p in enumerate(found) if p.resolve() not in {q.resolve() for q in found[:i]}]


def resolve(env: Mapping[str, str], cwd: Path) -> Found:
    """The environment the CLI runs with: ``env``, completed from the bridge's env file."""
    values = dict(env)
    if "REDIS_URL" in env and not came_from_env_file(env):
        return Found(values, "REDIS_URL")
    for data_dir in candidates(env, cwd):
        path = data_dir / ENV_FILE
        if path.is_file():
            written = read(path)
            chosen = {k: v for k, v in env.items() if k not in ("REDIS_URL", EMBEDDED_MARK)}
            return Found({**written, **chosen}, f"REDIS_URL from {_shown(path, cwd)}")
        if (data_dir / "redis").is_dir() and "REDIS_URL" not in env:
            raise SettingError(
                f"REDIS_URL is not set, and {_shown(data_dir / 'redis', cwd)} holds an embedded "
                f"Redis's data but {_shown(path, cwd)} is missing: start the bridge "
                "(scripts/serve.sh writes it), or set REDIS_URL"
            )
    if "REDIS_URL" in env:
        return Found(values, "REDIS_URL, loaded from a bridge.env")
    return Found(
        values,
        "REDIS_URL unset: the default",
        note="REDIS_URL is not set and no var/bridge.env was found: using redis://127.0.0.1:6379/0",
    )


def _shown(path: Path, cwd: Path) -> str:
    """``path`` relative to the working directory when it is under it."""
    try:
        return str(path.resolve().relative_to(cwd.resolve()))
    except ValueError:
        return str(path.resolve())
