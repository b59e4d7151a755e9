"""The console signed in with the Flask test client: an admin's and a viewer's."""

from __future__ import annotations

import re

import pytest

from bridge.console.auth import CSRF_FIELD
from tests.admin.conftest import add_webhook  # noqa: F401 - the admin tests' fixture, shared

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]*)"')


def csrf_of(html: str) -> str:
    """The CSRF token in a page's first form."""
    found = CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


class Console:
    """The Flask test client signed in to /console; ``post`` adds the CSRF token."""

    def __init__(self, client) -> None:
        self.client = client
        self.csrf = ""

    def sign_in(self, token: str):
        page = self.client.get("/console/login")
        response = self.client.post(
            "/console/login", data={CSRF_FIELD: csrf_of(page.text), "token": token}
        )
        if response.status_code == 302:
            self.csrf = csrf_of(self.client.get("/console/").text)
        return response

    def get(self, path: str, **kw):
        return self.client.get(f"/console{path}", **kw)

    def post(self, path: str, data: dict | None = None, *, csrf: bool = True, **kw):
        form = dict(data or {})
        if csrf:
            form[CSRF_FIELD] = self.csrf
        return self.client.post(f"/console{path}", data=form, **kw)


@pytest.fixture
def console(app, admin_token) -> Console:
    signed_in = Console(app.test_client())
    assert signed_in.sign_in(admin_token).status_code == 302
    return signed_in


@pytest.fixture
def viewer_token(app) -> str:
    _, secret = app.extensions["bridge"].admin_tokens.create("watcher", "viewer")
    return secret


@pytest.fixture
def viewer(app, viewer_token) -> Console:
    signed_in = Console(app.test_client())
    assert signed_in.sign_in(viewer_token).status_code == 302
    return signed_in


@pytest.fixture
def create_user(scim):
    """Push a user through /scim/v2 as Entra would; returns the stored resource."""
    from tests.factories import entra_user

    def create(**overrides) -> dict:
        response = scim.post("/Users", json=entra_user(**overrides))
        assert response.status_code == 201, response.json
        return response.json

    return create
