"""Signing in and out of /console: the session cookie, its attributes, its end."""

from __future__ import annotations

import dataclasses

from app import create_app
from bridge.console.auth import CSRF_FIELD, LOGIN_COOKIE, SESSION_COOKIE
from tests.console.conftest import Console, csrf_of


def cookie_header(response, name: str) -> str:
    [header] = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(name + "=")]
    return header


def test_pages_send_a_visitor_without_a_session_to_the_sign_in_form(app):
    response = app.test_client().get("/console/targets")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/console/login")


def test_scripts_without_a_session_get_401_json(app):
    response = app.test_client().get("/console/resync/status.json")
    assert response.status_code == 401
    assert response.json == {"message": "Sign in first."}


def test_signing_in_with_an_admin_token_opens_the_overview(app, admin_token):
    console = Console(app.test_client())
    response = console.sign_in(admin_token)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/console/")
    page = console.get("/")
    assert page.status_code == 200
    assert "Overview" in page.text and "tests" in page.text


def test_session_cookie_is_httponly_strict_scoped_and_secure_behind_https(app, admin_token):
    # the test settings' BRIDGE_PUBLIC_URL is https://bridge.test: a TLS proxy in front
    response = Console(app.test_client()).sign_in(admin_token)
    header = cookie_header(response, SESSION_COOKIE)
    assert "HttpOnly" in header
    assert "SameSite=Strict" in header
    assert "Path=/console" in header
    assert "Secure" in header


def test_session_cookie_is_not_secure_over_plain_http_without_an_https_public_url(
    settings, redis_client
):
    app = create_app(dataclasses.replace(settings, public_base_url=""))
    _, token = app.extensions["bridge"].admin_tokens.create("plain")
    response = Console(app.test_client()).sign_in(token)
    header = cookie_header(response, SESSION_COOKIE)
    assert "Secure" not in header
    assert "HttpOnly" in header


def test_session_cookie_is_secure_when_the_request_is_https(settings, redis_client):
    app = create_app(dataclasses.replace(settings, public_base_url=""))
    _, token = app.extensions["bridge"].admin_tokens.create("tls")
    client = app.test_client()
    page = client.get("/console/login", base_url="https://bridge.example")
    response = client.post(
        "/console/login",
        data={CSRF_FIELD: csrf_of(page.text), "token": token},
        base_url="https://bridge.example",
    )
    assert "Secure" in cookie_header(response, SESSION_COOKIE)


def test_the_cookie_holds_a_signed_session_id_not_the_token(app, admin_token):
    response = Console(app.test_client()).sign_in(admin_token)
    header = cookie_header(response, SESSION_COOKIE)
    assert admin_token not in header
    assert admin_token[4:20] not in header


def test_a_wrong_token_is_refused_with_401(app):
    response = Console(app.test_client()).sign_in("adm_not-a-token")
    assert response.status_code == 401
    assert "not a valid admin token" in response.text
    cookies = response.headers.getlist("Set-Cookie")
    assert not [c for c in cookies if c.startswith(SESSION_COOKIE + "=")]


def test_a_scim_token_does_not_sign_in(app, token):
    assert Console(app.test_client()).sign_in(token).status_code == 401


def test_sign_in_without_the_forms_csrf_token_is_refused(app, admin_token):
    client = app.test_client()
    client.get("/console/login")
    response = client.post("/console/login", data={"token": admin_token})
    assert response.status_code == 403
    assert "CSRF" in response.text


def test_sign_in_with_a_csrf_token_of_another_form_is_refused(app, admin_token):
    other = app.test_client()
    stolen = csrf_of(other.get("/console/login").text)
    client = app.test_client()
    client.get("/console/login")
    response = client.post("/console/login", data={CSRF_FIELD: stolen, "token": admin_token})
    assert response.status_code == 403


def test_login_form_cookie_is_httponly_and_strict(app):
    header = cookie_header(app.test_client().get("/console/login"), LOGIN_COOKIE)
    assert "HttpOnly" in header and "SameSite=Strict" in header


def test_each_sign_in_gets_a_new_session(app, admin_token):
    first = cookie_header(Console(app.test_client()).sign_in(admin_token), SESSION_COOKIE)
    second = cookie_header(Console(app.test_client()).sign_in(admin_token), SESSION_COOKIE)
    assert first.split(";")[0] != second.split(";")[0]


def test_signing_out_ends_the_session_even_for_a_copied_cookie(app, console):
    copied = console.client.get_cookie(SESSION_COOKIE, path="/console").value
    response = console.post("/logout")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/console/login")
    thief = app.test_client()
    thief.set_cookie(SESSION_COOKIE, copied, path="/console")
    assert thief.get("/console/").status_code == 302


def test_revoking_the_token_ends_its_sessions(app, console):
    store = app.extensions["bridge"].admin_tokens
    [mine] = store.list()
    store.revoke(mine.id)
    assert console.get("/").status_code == 302


def test_a_tampered_cookie_is_no_session(app, console):
    value = console.client.get_cookie(SESSION_COOKIE, path="/console").value
    console.client.set_cookie(SESSION_COOKIE, value[:-2] + "xx", path="/console")
    assert console.get("/").status_code == 302


def test_a_cookie_signed_with_another_console_key_is_no_session(settings, redis_client, console):
    value = console.client.get_cookie(SESSION_COOKIE, path="/console").value
    other = create_app(dataclasses.replace(settings, console_secret_key="another key"))
    client = other.test_client()
    client.set_cookie(SESSION_COOKIE, value, path="/console")
    assert client.get("/console/").status_code == 302


def test_without_any_key_sign_in_is_refused_and_says_which_setting(settings, redis_client):
    app = create_app(dataclasses.replace(settings, secret_keys=(), console_secret_key=""))
    _, token = app.extensions["bridge"].admin_tokens.create("nokey")
    page = app.test_client().get("/console/login")
    assert "BRIDGE_CONSOLE_SECRET_KEY" in page.text
    response = app.test_client().post("/console/login", data={"token": token})
    assert response.status_code == 503


def test_console_pages_are_private_and_never_framed(console):
    response = console.get("/")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_the_console_key_setting_is_read_from_the_environment():
    from bridge.runtime.config import Settings

    settings = Settings.from_env({"BRIDGE_CONSOLE_SECRET_KEY": " k3y "})
    assert settings.console_secret_key == "k3y"
    assert "k3y" not in repr(settings)


def test_without_redis_a_page_is_a_503_page_not_a_traceback(settings, redis_client):
    gone = dataclasses.replace(
        settings, redis_url="redis://127.0.0.1:9/0", redis_timeout_seconds=0.5
    )
    app = create_app(gone)
    client = app.test_client()
    signer = app.extensions["bridge_console"]["signer"]
    client.set_cookie(SESSION_COOKIE, signer.cookie("some-session"), path="/console")
    response = client.get("/console/targets")
    assert response.status_code == 503
    assert "Redis is unavailable" in response.text
