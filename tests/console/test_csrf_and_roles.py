"""CSRF on every console form, and the viewer role: pages yes, buttons and POSTs no."""

from __future__ import annotations

from bridge.console.auth import CSRF_HEADER


def test_a_post_without_the_csrf_token_is_refused_and_does_nothing(app, console):
    response = console.post("/tokens", {"kind": "scim", "name": "sneaky"}, csrf=False)
    assert response.status_code == 403
    assert "CSRF" in response.text
    assert app.extensions["bridge"].tokens.list() == []


def test_a_post_with_another_sessions_csrf_token_is_refused(app, console, admin_token):
    from tests.console.conftest import Console

    other = Console(app.test_client())
    other.sign_in(admin_token)
    console.csrf = other.csrf
    assert console.post("/tokens", {"kind": "scim", "name": "x"}).status_code == 403


def test_the_csrf_token_is_accepted_in_a_header_for_scripts(app, console):
    response = console.client.post(
        "/console/tokens", data={"kind": "scim", "name": "hdr"}, headers={CSRF_HEADER: console.csrf}
    )
    assert response.status_code == 201
    assert [t.name for t in app.extensions["bridge"].tokens.list()] == ["hdr"]


def test_sign_out_needs_the_csrf_token_too(console):
    assert console.post("/logout", csrf=False).status_code == 403
    assert console.get("/").status_code == 200


def test_every_form_on_a_page_carries_the_csrf_token(console, add_webhook):
    add_webhook()
    page = console.get("/targets/hook").text
    forms = page.count('<form method="post"')
    assert forms >= 4
    assert page.count(f'name="csrf_token" value="{console.csrf}"') == forms


def test_a_viewer_sees_the_pages(viewer, add_webhook, create_user):
    add_webhook()
    user = create_user()
    for path in ("/", "/targets", "/targets/hook", f"/directory/user/{user['id']}", "/audit",
                 "/resync", "/tokens"):  # fmt: skip
        assert viewer.get(path).status_code == 200, path


def test_a_viewer_gets_no_admin_buttons(viewer, add_webhook, create_user):
    add_webhook()
    user = create_user()
    for path in ("/targets/hook", f"/directory/user/{user['id']}", "/resync", "/tokens"):
        page = viewer.get(path).text
        assert page.count('<form method="post"') == 1, path  # signing out only
    assert 'id="start-form"' not in viewer.get("/resync").text


def test_an_admin_gets_the_buttons(console, add_webhook):
    add_webhook()
    page = console.get("/targets/hook").text
    assert "Sync now" in page and "Test connection" in page and "Disable" in page


def test_a_viewers_post_is_refused_and_changes_nothing(app, viewer, add_webhook):
    add_webhook()
    response = viewer.post("/targets/hook/enabled", {"enabled": "0"})
    assert response.status_code == 403
    assert "viewer" in response.text
    assert app.extensions["bridge"].targets.configs()[0]["enabled"] is True


def test_a_viewer_cannot_make_tokens(app, viewer):
    assert viewer.post("/tokens", {"kind": "admin", "name": "me-too"}).status_code == 403
    assert [t.name for t in app.extensions["bridge"].admin_tokens.list()] == ["watcher"]


def test_a_viewer_may_sign_out(viewer):
    assert viewer.post("/logout").status_code == 302
    assert viewer.get("/").status_code == 302


def test_the_admin_api_lets_a_viewer_token_read(app, viewer_token):
    response = app.test_client().get(
        "/admin/status", headers={"Authorization": f"Bearer {viewer_token}"}
    )
    assert response.status_code == 200


def test_the_admin_api_refuses_a_viewer_tokens_writes_with_403_json(app, viewer_token):
    response = app.test_client().post(
        "/admin/targets",
        json={"name": "x", "kind": "webhook", "url": "http://127.0.0.1:9/"},
        headers={"Authorization": f"Bearer {viewer_token}"},
    )
    assert response.status_code == 403
    assert response.json["message"] == "this admin token has the viewer role: it may only read"
    assert app.extensions["bridge"].targets.configs() == []
