"""The sign-in tests' IdP, its configuration in the bridge, and a client for the ACS."""

from __future__ import annotations

import base64
import logging
import zlib
from urllib.parse import parse_qs, urlsplit

import pytest
from lxml import etree

from tests.sso.saml_idp import TestIdp, User, encode, new_key_and_cert

BASE = "https://bridge.test"
SP_ENTITY_ID = f"{BASE}/sso/saml/entra"
ACS_URL = f"{SP_ENTITY_ID}/acs"


@pytest.fixture(scope="session")
def entra() -> TestIdp:
    """The tenant's IdP: one key and certificate for the whole session (RSA is slow)."""
    return TestIdp()


@pytest.fixture(scope="session")
def stranger() -> TestIdp:
    """Another IdP with its own key, that the bridge does not trust."""
    return TestIdp()


@pytest.fixture
def add_idp(admin, entra):
    """Configure the IdP through the admin API; returns its public view."""

    def add(**overrides) -> dict:
        response = admin.post("/idps", json=entra.config(**overrides))
        assert response.status_code == 201, response.json
        return response.json

    return add


class Acs:
    """Posts Responses to the ACS and tells what the directory holds."""

    def __init__(self, app, entra: TestIdp) -> None:
        self.client = app.test_client()
        self.entra = entra
        self.state = app.extensions["bridge"]

    def response(self, user: User, **kw):
        kw.setdefault("acs_url", ACS_URL)
        kw.setdefault("audience", SP_ENTITY_ID)
        return self.entra.response(user, **kw)

    def post(self, response, relay_state: str | None = None, idp: str = "entra"):
        form = {"SAMLResponse": response if isinstance(response, str) else encode(response)}
        if relay_state is not None:
            form["RelayState"] = relay_state
        return self.client.post(f"/sso/saml/{idp}/acs", data=form)

    def login(self, next_url: str | None = None, idp: str = "entra"):
        query = {"next": next_url} if next_url else {}
        return self.client.get(f"/sso/saml/{idp}/login", query_string=query)

    def request_id(self, next_url: str | None = None, idp: str = "entra") -> str:
        """Start an SP-initiated sign-in; the id of the AuthnRequest sent."""
        answer = self.login(next_url, idp)
        assert answer.status_code == 302, answer.data
        query = parse_qs(urlsplit(answer.headers["Location"]).query)
        xml = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15)
        return etree.fromstring(xml).get("ID")

    def sign_in(self, user: User, relay_state: str | None = None, **kw):
        """A complete SP-initiated sign-in of ``user``."""
        rid = self.request_id()
        return self.post(self.response(user, in_response_to=rid, **kw), relay_state)

    def users(self) -> int:
        return self.state.directory.count("user")

    def changes(self) -> int:
        return int(self.state.redis.xlen(self.state.directory.changes_key))


@pytest.fixture
def acs(app, entra) -> Acs:
    return Acs(app, entra)


@pytest.fixture(scope="session")
def sp_signing() -> tuple[str, str]:
    """The bridge's own signing key and certificate for AuthnRequests (PEM)."""
    return new_key_and_cert("bridge SP signing")


@pytest.fixture(scope="session")
def sp_encryption() -> tuple[str, str]:
    """The bridge's own decryption key and the certificate Entra encrypts to (PEM)."""
    return new_key_and_cert("bridge SP encryption")


@pytest.fixture
def refused(acs, caplog):
    """Check that an answer is a refusal for ``reason`` that wrote nothing."""
    caplog.set_level(logging.INFO)

    def check(answer, reason: str, status: int = 403, secret: str | None = None) -> None:
        assert answer.status_code == status, answer.data
        assert answer.mimetype == "text/html"
        assert f"({reason})".encode() in answer.data
        assert acs.users() == 0
        assert acs.changes() == 0
        logged = [r.getMessage() for r in caplog.records if "sign-in refused" in r.getMessage()]
        assert any(f"reason={reason}" in line for line in logged), logged
        if secret:
            assert all(secret not in r.getMessage() for r in caplog.records)

    return check


@pytest.fixture(autouse=True)
def _audit_written(request):
    """Write the test's buffered sign-in audit entries before the next test flushes Redis
    (the audit writer thread would otherwise add them to that test's trail)."""
    from bridge.web.observe import audit_log

    app = request.getfixturevalue("app") if "app" in request.fixturenames else None
    yield
    if app is not None:
        audit_log(app).flush()
