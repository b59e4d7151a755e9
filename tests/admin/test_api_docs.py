"""Swagger UI at /admin/docs and the OpenAPI document (bridge.admin.api_docs)."""

from __future__ import annotations

import dataclasses

import pytest

from app import create_app


@pytest.fixture
def docs_app(settings, redis_client):
    def make(**changes):
        return create_app(dataclasses.replace(settings, **changes))

    return make


def test_the_swagger_ui_page_needs_no_token_and_loads_the_openapi_document(app):
    response = app.test_client().get("/admin/docs")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'url: "/admin/openapi.json"' in page
    assert 'src="/admin/docs/assets/swagger-ui-bundle.js"' in page
    assert "Authorization" in page  # the page sends the admin token it asks for


def test_the_swagger_ui_scripts_are_served_by_the_bridge(app):
    response = app.test_client().get("/admin/docs/assets/swagger-ui-bundle.js")
    assert response.status_code == 200
    assert "javascript" in response.content_type
    assert b"SwaggerUIBundle" in response.data
    response.close()


def test_only_swagger_uis_own_files_are_served(app):
    client = app.test_client()
    assert client.get("/admin/docs/assets/index.html").status_code == 404
    assert client.get("/admin/docs/assets/..%2F__init__.py").status_code == 404


def test_the_openapi_document_needs_an_admin_token(app, admin):
    assert app.test_client().get("/admin/openapi.json").status_code == 401
    spec = admin.get("/openapi.json").json
    assert "/admin/targets/{target}" in spec["paths"]


def test_the_docs_can_be_turned_off(docs_app):
    app = docs_app(api_docs=False)
    _, token = app.extensions["bridge"].admin_tokens.create("t")
    client = app.test_client()
    assert client.get("/admin/docs").status_code == 401  # an admin path like any other
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/admin/docs", headers=headers).status_code == 404
    assert client.get("/admin/openapi.json", headers=headers).status_code == 200


def test_the_docs_path_and_the_scripts_url_are_configurable(docs_app):
    app = docs_app(api_docs_path="api/ui", swagger_ui_url="https://cdn.example.com/swagger/")
    page = app.test_client().get("/admin/api/ui").get_data(as_text=True)
    assert 'src="https://cdn.example.com/swagger/swagger-ui-bundle.js"' in page
