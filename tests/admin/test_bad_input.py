"""Bad input to the admin API is a 4xx JSON error, never a 5xx (flask-smorest's error body)."""

from __future__ import annotations

import pytest

from tests.admin.conftest import webhook

DEEP_ARRAY = "[" * 10_000 + "]" * 10_000
DEEP_OBJECT = '{"a":' * 10_000 + "1" + "}" * 10_000
NESTED_FILTER = "(" * 500 + 'userName eq "x"' + ")" * 500


def body_endpoints(app) -> list[tuple[str, str]]:
    """Every admin route that takes a body: its method and a path to a real target."""
    out = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin"):
            continue
        for method in sorted((rule.methods or set()) & {"POST", "PUT", "PATCH"}):
            out.append((method, rule.rule.replace("<target>", "hook")))
    return out


@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT], ids=["array", "object"])
def test_json_nested_ten_thousand_deep_is_400_on_every_admin_post_and_patch(app, admin, body):
    assert admin.post("/targets", json=webhook()).status_code == 201
    endpoints = body_endpoints(app)
    assert ("POST", "/admin/targets") in endpoints and ("PATCH", "/admin/targets/hook") in endpoints
    for method, path in endpoints:
        response = admin.client.open(
            path,
            method=method,
            data=body,
            headers={**admin.headers, "Content-Type": "application/json"},
        )
        assert response.status_code == 400, (method, path, response.json)
        assert response.json["code"] == 400
        assert "JSON" in response.json["message"] or "deeper" in response.json["message"]


def test_json_nested_past_the_depth_limit_is_400(admin):
    value: object = "x"
    for _ in range(100):
        value = {"a": value}
    response = admin.post("/targets", json=webhook(user_mapping={"x": {"const": value}}))
    assert response.status_code == 400
    assert "deeper than" in response.json["message"]


@pytest.mark.parametrize(
    "scope_filter",
    [
        NESTED_FILTER,
        "not (" * 500 + 'userName eq "x"' + ")" * 500,
        " or ".join(['userName eq "x"'] * 10_000),
        " and ".join([f'userName eq "{i}"' for i in range(101)]),
    ],
    ids=["nested-parentheses", "nested-not", "ten-thousand-or", "past-max-terms"],
)
def test_target_scope_filter_past_the_parser_limits_is_422(admin, scope_filter):
    response = admin.post(
        "/targets", json=webhook(scope={"type": "filter", "filter": scope_filter})
    )
    assert response.status_code == 422, response.json
    assert list(response.json["errors"]["scope"]) == ["filter"]
    assert admin.get("/targets").json == []


def test_target_scope_filter_changed_past_the_limits_is_422(admin):
    assert admin.post("/targets", json=webhook()).status_code == 201
    response = admin.patch(
        "/targets/hook", json={"scope": {"type": "filter", "filter": NESTED_FILTER}}
    )
    assert response.status_code == 422, response.json
    assert admin.get("/targets/hook").json["scope"] == {"type": "all"}
