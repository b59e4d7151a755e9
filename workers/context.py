"""The worker process's services: built once at start-up, shared by its threads and jobs.

RQ calls job functions by import path with only their arguments, so a job finds the
process's :class:`~bridge.runtime.services.Services` here. ``workers.run`` installs them
at start-up; a test that runs jobs in its own process installs its app's.
"""

from __future__ import annotations

from bridge.runtime.services import Services

_installed: Services | None = None


def install(services: Services | None) -> None:
    """Make ``services`` the process's (None forgets them)."""
    global _installed
    _installed = services


def context() -> Services:
    """The process's services; a job run before any were installed is a set-up error."""
    if _installed is None:
        raise RuntimeError("no services installed: start workers with python -m workers.run")
    return _installed
