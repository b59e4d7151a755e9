"""Replays every request of Microsoft's Entra SCIM tutorial, in order, against the bridge.

The samples live in ``tests/samples/entra/tutorial.json``; each step states the status and
the parts of the response body the tutorial shows (ids and timestamps are the server's).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SAMPLES = Path(__file__).parent.parent / "samples" / "entra" / "tutorial.json"


def substitute(value: Any, saved: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, rid in saved.items():
            value = value.replace("{" + key + "}", rid)
        return value
    if isinstance(value, list):
        return [substitute(v, saved) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, saved) for k, v in value.items()}
    return value


def contains(actual: Any, expected: Any) -> bool:
    """``expected`` is a sub-document of ``actual`` (lists compared element by element)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and contains(actual[k], v) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(contains(a, e) for a, e in zip(actual, expected, strict=True))
        )
    return actual == expected


def test_every_tutorial_request_gets_the_tutorial_response(scim):
    steps = json.loads(SAMPLES.read_text())["steps"]
    saved: dict[str, str] = {}
    for step in steps:
        path = substitute(step["path"], saved)
        body = substitute(step.get("body"), saved)
        response = scim._call(step["method"], path, json=body)
        assert response.status_code == step["status"], (step["name"], response.json)
        if "expect" in step:
            expected = substitute(step["expect"], saved)
            assert contains(response.json, expected), (step["name"], response.json)
        for key in step.get("absent", []):
            assert key not in response.json, step["name"]
        if "save" in step:
            saved[step["save"]] = response.json["id"]
