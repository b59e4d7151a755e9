"""Settings, MSAL credentials and the Graph client, against the fake identity platform."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import httpx
import jwt
import pytest
from azure.core.credentials import AccessToken

from bridge.graph.client import (
    GraphAuthError,
    GraphError,
    GraphSettings,
    MsalCredential,
    graph_client,
)
from bridge.graph.settings import DEFAULT_PAGE_SIZE
from bridge.graph.source import GraphSource
from bridge.runtime.tls import ssl_context
from tests.fakes.graph_tls import ClientCertificate, make_client_certificate


def read_user(settings: GraphSettings, key: str) -> dict | None:
    """One Graph request in its own event loop, as an RQ job would make it."""

    async def run() -> dict | None:
        async with GraphSource(settings) as source:
            return await source.user(key, ["displayName"])

    return asyncio.run(run())


def test_from_env_reads_every_setting():
    settings = GraphSettings.from_env(
        {
            "BRIDGE_GRAPH_TENANT_ID": "t",
            "BRIDGE_GRAPH_CLIENT_ID": "c",
            "BRIDGE_GRAPH_CLIENT_SECRET": "s",
            "BRIDGE_GRAPH_CERT_PATH": "/etc/bridge/app.pem",
            "BRIDGE_GRAPH_CERT_THUMBPRINT": "AB12",
            "BRIDGE_GRAPH_AUTHORITY_HOST": "https://login.microsoftonline.us/",
            "BRIDGE_GRAPH_BASE_URL": "https://graph.microsoft.us/v1.0/",
            "BRIDGE_GRAPH_CA_BUNDLE": "/etc/ssl/corp.pem",
            "BRIDGE_GRAPH_PAGE_SIZE": "500",
            "BRIDGE_GRAPH_SERVICE_PRINCIPAL_ID": "sp",
            "BRIDGE_GRAPH_SCOPE_GROUPS": "g1, g2,,",
            "BRIDGE_GRAPH_MATCHING_ATTRIBUTE": "externalId",
            "BRIDGE_GRAPH_INTERVAL_MINUTES": "15",
        }
    )
    assert settings == GraphSettings(
        tenant_id="t",
        client_id="c",
        client_secret="s",
        cert_path="/etc/bridge/app.pem",
        cert_thumbprint="AB12",
        authority_host="https://login.microsoftonline.us",
        graph_base_url="https://graph.microsoft.us/v1.0",
        ca_bundle="/etc/ssl/corp.pem",
        page_size=500,
        service_principal_id="sp",
        scope_groups=("g1", "g2"),
        matching_attribute="externalId",
        interval_minutes=15,
    )
    assert settings.configured
    assert settings.authority == "https://login.microsoftonline.us/t"
    assert settings.scopes == ["https://graph.microsoft.us/.default"]


def test_defaults_and_configured():
    settings = GraphSettings.from_env({})
    assert not settings.configured
    assert settings.page_size == DEFAULT_PAGE_SIZE
    assert settings.scopes == ["https://graph.microsoft.com/.default"]
    assert settings.matching_attribute == "userName"
    cert_only = GraphSettings(tenant_id="t", client_id="c", cert_path="/app.pem")
    assert cert_only.configured


def test_scope_is_global_graph_for_other_hosts(graph_settings):
    assert graph_settings.graph_base_url.startswith("https://127.0.0.1:")
    assert graph_settings.scopes == ["https://graph.microsoft.com/.default"]


def test_token_is_acquired_once_and_reused_across_event_loops(fake_graph, graph_settings):
    user = fake_graph.tenant.add_user(displayName="Ada")
    for _ in range(3):
        assert read_user(graph_settings, user["id"])["displayName"] == "Ada"
    assert fake_graph.token_calls == 1
    (form,) = fake_graph.token_requests
    assert form["scope"] == "https://graph.microsoft.com/.default"
    assert form["client_secret"] == graph_settings.client_secret
    assert [r.status for r in fake_graph.graph_requests()] == [200, 200, 200]


def test_credential_returns_an_azure_access_token(fake_graph, graph_settings):
    token = MsalCredential(graph_settings).get_token(*graph_settings.scopes)
    assert isinstance(token, AccessToken)
    assert token.token in fake_graph.issued


def test_environment_ca_bundle_does_not_override_ours(monkeypatch, fake_graph, graph_settings):
    """requests would verify against REQUESTS_CA_BUNDLE (the system store) and fail."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    MsalCredential(graph_settings).get_token(*graph_settings.scopes)
    assert fake_graph.token_calls == 1


def test_bad_secret_is_an_auth_error(fake_graph, graph_settings):
    settings = dataclasses.replace(graph_settings, client_secret="wrong")
    with pytest.raises(GraphAuthError, match="invalid_client"):
        read_user(settings, "anyone")
    assert fake_graph.graph_requests() == []


def test_rejected_token_request_is_an_auth_error(fake_graph, graph_settings):
    fake_graph.reject_tokens = True
    with pytest.raises(GraphAuthError):
        MsalCredential(graph_settings).get_token(*graph_settings.scopes)


def test_certificate_credential(fake_graph, graph_settings, client_cert: ClientCertificate):
    """RFC 7523 client assertion: signed with the app's key, aud is the token endpoint;
    the fake checks the signature against the registered certificate."""
    settings = dataclasses.replace(
        graph_settings, client_secret="", cert_path=str(client_cert.pem_path)
    )
    user = fake_graph.tenant.add_user()
    assert read_user(settings, user["id"]) is not None
    (form,) = fake_graph.token_requests
    assert "client_secret" not in form
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    header = jwt.get_unverified_header(form["client_assertion"])
    assert header["alg"] == "PS256"
    assert "x5t#S256" in header
    claims = jwt.decode(form["client_assertion"], options={"verify_signature": False})
    assert claims["aud"] == f"{fake_graph.authority}/oauth2/v2.0/token"
    assert claims["iss"] == claims["sub"] == fake_graph.client_id


def test_certificate_with_sha1_thumbprint(fake_graph, graph_settings, client_cert):
    settings = dataclasses.replace(
        graph_settings,
        client_secret="",
        cert_path=str(client_cert.pem_path),
        cert_thumbprint=client_cert.sha1_thumbprint,
    )
    MsalCredential(settings).get_token(*settings.scopes)
    header = jwt.get_unverified_header(fake_graph.token_requests[0]["client_assertion"])
    assert header["alg"] == "RS256"
    assert "x5t" in header


def test_certificate_not_registered_is_an_auth_error(fake_graph, graph_settings, tmp_path):
    other = make_client_certificate(tmp_path, "other-app")
    settings = dataclasses.replace(graph_settings, client_secret="", cert_path=str(other.pem_path))
    with pytest.raises(GraphAuthError, match="AADSTS700027"):
        MsalCredential(settings).get_token(*settings.scopes)


def test_graph_requires_a_bearer_token(fake_graph, server_tls):
    with httpx.Client(verify=ssl_context(str(server_tls.ca_path)), trust_env=False) as http:
        response = http.get(f"{fake_graph.graph_url}/users/delta")
    assert response.status_code == 401
    assert json.loads(response.content)["error"]["code"] == "InvalidAuthenticationToken"


def test_graph_refusing_the_token_is_an_auth_error(fake_graph, graph_settings):
    user = fake_graph.tenant.add_user()
    read_user(graph_settings, user["id"])
    fake_graph.issued.clear()  # the cached token is no longer accepted
    with pytest.raises(GraphAuthError) as caught:
        read_user(graph_settings, user["id"])
    assert caught.value.status == 401


def test_untrusted_identity_platform_is_a_graph_error(fake_graph, graph_settings):
    """Without our CA the fake's certificate fails verification, whatever the environment."""
    settings = dataclasses.replace(graph_settings, ca_bundle="")
    with pytest.raises(GraphError, match="request failed") as caught:
        MsalCredential(settings).get_token(*settings.scopes)
    assert caught.value.__cause__ is not None


def test_unreachable_graph_is_a_graph_error(fake_graph, graph_settings):
    settings = dataclasses.replace(graph_settings, graph_base_url="https://127.0.0.1:9/v1.0")
    with pytest.raises(GraphError, match="ConnectError"):
        read_user(settings, "anyone")


def test_plain_http_graph_is_refused_off_localhost():
    with pytest.raises(GraphError, match="https"):
        graph_client(GraphSettings(graph_base_url="http://graph.example/v1.0"))
