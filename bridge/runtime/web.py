"""The web tier of a deployment: ``python -m bridge.runtime.web`` (the image's command).

granian serving ``app:serve_app()``, with the same command line as ``serve.sh`` builds
(:func:`bridge.runtime.serve.web_command`) and its settings from the environment:
``BRIDGE_BIND`` (``host:port``; the image sets ``0.0.0.0:8000``), ``WEB_CONCURRENCY``
(processes, 2), ``BRIDGE_WEB_THREADS`` (threads per process, 4) and ``BRIDGE_ACCESS_LOG``.
The bridge's settings are checked first, so a bad one is one line (exit status 2) rather
than a traceback from every granian worker. granian then replaces this process (so it
receives the container's SIGTERM itself).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from bridge.runtime.config import SettingError, Settings
from bridge.runtime.serve import DEFAULT_BIND, web_command, web_options


def command(env: Mapping[str, str]) -> list[str]:
    """granian's command line for the settings in ``env``."""
    bind = env.get("BRIDGE_BIND", DEFAULT_BIND)
    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit():
        raise SettingError(f"BRIDGE_BIND must be host:port (e.g. 0.0.0.0:8000), not {bind!r}")
    return web_command(bind, *web_options(env), bool(env.get("BRIDGE_ACCESS_LOG")))


def main() -> None:
    """Check the settings, then become granian."""
    try:
        Settings.from_env()
        args = command(os.environ)
    except ValueError as exc:
        print(f"bad setting: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    os.execv(args[0], args)


if __name__ == "__main__":
    main()
