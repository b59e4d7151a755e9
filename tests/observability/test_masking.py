"""Credentials are masked wherever a URL or a body is shown: logs, the admin API, the CLI."""

from __future__ import annotations

import orjson
import pytest

from bridge.observability.audit_log import body_text
from bridge.observability.masking import (
    SECRET_FIELDS,
    mask_body,
    mask_text,
    mask_url,
    may_name_secret,
)
from bridge.targets.signing import new_secret


def test_query_string_credentials_are_masked_and_the_rest_kept():
    url = "https://x.example/hook?api_key=AK&team=7&access_token=AT&Secret=S&password=P&sig=G"
    assert mask_url(url) == (
        "https://x.example/hook?api_key=***&team=7&access_token=***&Secret=***&password=***&sig=***"
    )


def test_a_password_in_a_url_is_masked():
    assert mask_url("https://svc:pa55@x.example/scim") == "https://svc:***@x.example/scim"


def test_bridge_tokens_and_signing_secrets_are_masked_in_text():
    text = "token scim_abcdefghijklmnop admin adm_abcdefghijkl secret whsec_QUJDREVGR0hJSktM"
    assert mask_text(text) == "token scim_*** admin adm_*** secret whsec_***"


def test_secret_attributes_and_password_patches_are_masked_in_bodies():
    body = {
        "password": "p",
        "name": {"givenName": "Ada"},
        "Operations": [{"op": "replace", "path": "password", "value": "q"}],
    }
    assert mask_body(body) == {
        "password": "***",
        "name": {"givenName": "Ada"},
        "Operations": [{"op": "replace", "path": "password", "value": "***"}],
    }


@pytest.mark.parametrize("field", sorted(SECRET_FIELDS))
def test_the_quick_check_finds_every_secret_field_in_any_case(field):
    assert may_name_secret(orjson.dumps({"a": [{field.upper(): "x"}]}).decode())
    assert may_name_secret(orjson.dumps({"path": f"urn:x:{field.title()}"}).decode())


def test_a_body_naming_no_secret_is_stored_as_sent():
    body = {"userName": "ada@example.test", "emails": [{"value": "ada@example.test"}]}
    assert not may_name_secret(orjson.dumps(body).decode())
    assert body_text(None, body) == orjson.dumps(body).decode()


def test_a_stored_body_has_its_password_patch_masked():
    body = {"Operations": [{"op": "Replace", "path": "PassWord", "value": "hunter2"}]}
    assert "hunter2" not in (body_text(None, body) or "")


def hook_with_key(admin) -> dict:
    body = {
        "name": "keyed",
        "kind": "webhook",
        "url": "http://127.0.0.1:9/events?api_key=K3Y-value&region=eu",
        "signing_secret": new_secret(),
    }
    response = admin.post("/targets", json=body)
    assert response.status_code == 201, response.json
    return response.json


def test_the_admin_api_masks_credentials_in_a_target_url(admin):
    created = hook_with_key(admin)
    assert created["url"] == "http://127.0.0.1:9/events?api_key=***&region=eu"
    shown = admin.get("/targets/keyed").json
    assert "K3Y-value" not in str(shown)
    assert "K3Y-value" not in admin.get("/targets").get_data(as_text=True)


def test_the_cli_masks_credentials_in_a_target_url(app, admin):
    hook_with_key(admin)
    runner = app.test_cli_runner()
    for args in (["targets", "list"], ["targets", "show", "keyed"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 0, result.output
        assert "K3Y-value" not in result.output and "api_key=***" in result.output


def test_the_stored_url_keeps_its_credentials_for_delivery(app, admin):
    hook_with_key(admin)
    (target,) = app.extensions["bridge"].targets.all()
    assert target.url.endswith("api_key=K3Y-value&region=eu")
