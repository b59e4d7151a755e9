"""OpenID Connect sign-in through the real msal against a fake Entra v2.0 provider over TLS
(authorization, token with a signed ID token, JWKS): state, nonce, PKCE, issuer, audience,
expiry and signature are checked; a valid sign-in provisions the user."""

from __future__ import annotations

import html
import logging
import re
import ssl
import uuid
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from bridge.runtime.config import Settings
from tests.fakes.graph_tls import ServerTLS, make_server_tls, serve_tls
from tests.fakes.oidc_provider import FakeOidc
from tests.sso.conftest import BASE

SECRET = "oidc-client-secret"


@pytest.fixture(scope="session")
def oidc_tls(tmp_path_factory) -> ServerTLS:
    return make_server_tls(tmp_path_factory.mktemp("oidc-tls"))


@pytest.fixture
def settings(settings, oidc_tls, monkeypatch) -> Settings:
    monkeypatch.setenv("BRIDGE_GRAPH_CA_BUNDLE", str(oidc_tls.ca_path))
    return Settings.from_env()


@pytest.fixture(scope="session")
def provider_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def provider(oidc_tls, provider_key):
    oid = str(uuid.uuid4())
    fake = FakeOidc(
        key=provider_key,
        tenant_id=str(uuid.uuid4()),
        client_id=str(uuid.uuid4()),
        client_secret=SECRET,
        user={
            "oid": oid,
            "preferred_username": f"grace.{oid[:8]}@contoso.com",
            "name": "Grace Hopper",
            "given_name": "Grace",
            "family_name": "Hopper",
            "email": f"grace.{oid[:8]}@contoso.com",
        },
    )
    with serve_tls(fake, oidc_tls.ssl_context()) as url:
        fake.base_url = url
        yield fake


@pytest.fixture
def oidc_idp(admin, provider):
    def add(**overrides) -> dict:
        body = {
            "name": "entra-oidc",
            "protocol": "oidc",
            "authority": provider.authority,
            "client_id": provider.client_id,
            "client_secret": SECRET,
            "allowed_redirects": ["https://app.example.com/"],
            **overrides,
        }
        answer = admin.post("/idps", json=body)
        assert answer.status_code == 201, answer.json
        return answer.json

    return add


class Browser:
    """The bridge through the Flask test client (cookies kept), the IdP over real TLS."""

    def __init__(self, app, oidc_tls: ServerTLS) -> None:
        self.client = app.test_client()
        context = ssl.create_default_context(cafile=str(oidc_tls.ca_path))
        self.http = httpx.Client(verify=context, follow_redirects=False)
        self.state = app.extensions["bridge"]

    def start(self, next_url: str | None = None):
        query = {"next": next_url} if next_url else {}
        return self.client.get("/sso/oidc/entra-oidc/login", query_string=query)

    def authorize(self, login) -> tuple[str, dict]:
        """Follow the login redirect to the IdP; the form it has the browser post back."""
        assert login.status_code == 302, login.data
        answer = self.http.get(login.headers["Location"])
        assert answer.status_code == 200, answer.text
        action = re.search(r'action="([^"]+)"', answer.text).group(1)
        fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', answer.text))
        return html.unescape(action), {k: html.unescape(v) for k, v in fields.items()}

    def callback(self, posted: tuple[str, dict], client=None):
        url, form = posted
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == BASE
        return (client or self.client).post(parts.path, data=form)

    def sign_in(self, next_url: str | None = None):
        return self.callback(self.authorize(self.start(next_url)))

    def users(self) -> int:
        return self.state.directory.count("user")

    def changes(self) -> int:
        return int(self.state.redis.xlen(self.state.directory.changes_key))


@pytest.fixture
def browser(app, oidc_tls):
    b = Browser(app, oidc_tls)
    yield b
    b.http.close()


def refused(browser, answer, reason: str, status: int = 403) -> None:
    assert answer.status_code == status, answer.data
    assert f"({reason})".encode() in answer.data
    assert browser.users() == 0 and browser.changes() == 0


def test_oidc_sign_in_creates_the_user_from_id_token_claims(browser, oidc_idp, provider):
    oidc_idp()
    answer = browser.sign_in()
    assert answer.status_code == 200, answer.data
    found = browser.state.directory.find(
        "user", "unique", "userName", provider.user["preferred_username"].casefold()
    )
    assert len(found) == 1
    assert found[0].doc["name"] == {"givenName": "Grace", "familyName": "Hopper"}
    assert found[0].doc["displayName"] == "Grace Hopper"


def test_login_uses_pkce_s256_state_and_nonce(browser, oidc_idp, provider):
    oidc_idp()
    browser.authorize(browser.start())
    sent = provider.authorize_requests[0]
    assert sent["code_challenge_method"] == "S256" and sent["code_challenge"]
    assert sent["state"] and sent["nonce"]
    assert sent["redirect_uri"] == f"{BASE}/sso/oidc/entra-oidc/callback"
    assert "openid" in sent["scope"].split()


def test_oidc_sign_in_redirects_to_an_allowed_next(browser, oidc_idp):
    oidc_idp()
    answer = browser.sign_in("https://app.example.com/start")
    assert answer.status_code == 303
    assert answer.headers["Location"] == "https://app.example.com/start"


def test_login_with_next_elsewhere_is_refused(browser, oidc_idp):
    oidc_idp()
    refused(browser, browser.start("https://evil.example.com/"), "redirect", 400)


def test_callback_without_the_state_cookie_is_refused(app, browser, oidc_idp):
    oidc_idp()
    posted = browser.authorize(browser.start())
    refused(browser, browser.callback(posted, client=app.test_client()), "state")


def test_callback_with_another_state_is_refused(browser, oidc_idp):
    oidc_idp()
    url, form = browser.authorize(browser.start())
    refused(browser, browser.callback((url, {**form, "state": "forged"})), "state")


def test_callback_used_twice_is_refused(browser, oidc_idp):
    oidc_idp()
    posted = browser.authorize(browser.start())
    assert browser.callback(posted).status_code == 200
    changes = browser.changes()
    browser.client.set_cookie("bridge_oidc_state", posted[1]["state"], path="/sso/oidc/entra-oidc/")
    answer = browser.callback(posted)
    assert answer.status_code == 403 and b"(state)" in answer.data
    assert browser.changes() == changes


def test_id_token_signed_by_another_key_is_refused(browser, oidc_idp, provider):
    oidc_idp()
    provider.sign_with = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused(browser, browser.sign_in(), "id_token")


def test_id_token_for_another_client_is_refused(browser, oidc_idp, provider):
    oidc_idp()
    provider.id_token_changes = {"aud": str(uuid.uuid4())}
    refused(browser, browser.sign_in(), "id_token")


def test_id_token_from_another_issuer_is_refused(browser, oidc_idp, provider):
    oidc_idp()
    provider.id_token_changes = {"iss": "https://login.microsoftonline.com/other/v2.0"}
    refused(browser, browser.sign_in(), "id_token")


def test_expired_id_token_is_refused(browser, oidc_idp, provider):
    oidc_idp()
    provider.id_token_changes = {"exp": 1_000_000_000, "iat": 999_990_000, "nbf": 999_990_000}
    refused(browser, browser.sign_in(), "id_token")


def test_id_token_with_another_nonce_is_refused(browser, oidc_idp, provider):
    oidc_idp()
    provider.id_token_changes = {"nonce": "replayed-nonce"}
    refused(browser, browser.sign_in(), "id_token")


def test_wrong_client_secret_is_refused(browser, oidc_idp, caplog):
    caplog.set_level(logging.INFO)
    oidc_idp(client_secret="not-the-secret")
    refused(browser, browser.sign_in(), "token")
    assert all("not-the-secret" not in r.getMessage() for r in caplog.records)


def test_oidc_sign_in_links_the_same_user_as_saml(browser, oidc_idp, provider, scim):
    from tests.factories import entra_user

    oidc_idp(match_username=False)
    pushed = scim.post("/Users", json=entra_user(externalId=provider.user["oid"])).json
    assert browser.sign_in().status_code == 200
    assert browser.users() == 1
    record = browser.state.directory.get("user", pushed["id"])
    assert record.doc["userName"] == provider.user["preferred_username"]


def test_oidc_claim_mapping_fills_more_attributes(browser, oidc_idp, provider):
    oidc_idp(claim_mapping={"title": "jobTitle"})
    provider.user["jobTitle"] = "Rear Admiral"
    assert browser.sign_in().status_code == 200
    found = browser.state.directory.find(
        "user", "unique", "userName", provider.user["preferred_username"].casefold()
    )
    assert found[0].doc["title"] == "Rear Admiral"


def test_oidc_sign_ins_are_audited_with_the_protocol(browser, oidc_idp, provider, admin, app):
    from bridge.web.observe import audit_log

    oidc_idp()
    assert browser.sign_in().status_code == 200
    audit_log(app).flush()
    [entry] = admin.get("/audit", query_string={"resource": "signin"}).json
    assert (entry["idp"], entry["protocol"], entry["outcome"]) == ("entra-oidc", "oidc", "created")
    assert entry["user_name"] == provider.user["preferred_username"]
