"""IdP configuration from Entra's federation metadata URL: fetched over HTTPS (a TLS fake
on 127.0.0.1 with its own CA), size-capped, parsed with the hardened parser, refreshed on
demand or when due, picking up a certificate rollover; a certificate carried in a SAML
message is never taken."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from bridge.runtime.config import Settings
from bridge.sso import metadata_fetch
from bridge.sso.idp_admin import store_of
from bridge.sso.metadata import MAX_METADATA_BYTES
from tests.fakes.federation_metadata import FakeFederationMetadata
from tests.fakes.graph_tls import ServerTLS, make_server_tls, serve_tls
from tests.sso.saml_idp import TestIdp, User

APP_ID = "00000000-1111-2222-3333-444444444444"


@pytest.fixture(scope="session")
def metadata_tls(tmp_path_factory) -> ServerTLS:
    return make_server_tls(tmp_path_factory.mktemp("metadata-tls"))


@pytest.fixture
def settings(settings, metadata_tls, monkeypatch) -> Settings:
    monkeypatch.setenv("BRIDGE_GRAPH_CA_BUNDLE", str(metadata_tls.ca_path))
    return Settings.from_env()


@pytest.fixture(scope="session")
def next_idp_key(entra) -> TestIdp:
    """The tenant's next signing key (same tenant, new certificate): a rollover."""
    return TestIdp(tenant_id=entra.tenant_id)


@pytest.fixture
def published(entra, metadata_tls):
    fake = FakeFederationMetadata(document=entra.metadata())
    with serve_tls(fake, metadata_tls.ssl_context()) as base:
        fake.url = base + fake.path(entra.tenant_id, APP_ID)  # type: ignore[attr-defined]
        yield fake


@pytest.fixture
def from_url(admin, published):
    def add(**overrides) -> dict:
        body = {"name": "entra", "protocol": "saml", "metadata_url": published.url}
        body.update(overrides)
        answer = admin.post("/idps", json=body)
        assert answer.status_code == 201, answer.json
        return answer.json

    return add


def test_idp_is_configured_from_the_metadata_url(from_url, published, entra):
    idp = from_url(allowed_redirects=["https://app.example.com/"])
    assert idp["entity_id"] == entra.entity_id and idp["sso_url"] == entra.sso_url
    assert idp["certificates"] == [entra.cert]
    assert idp["metadata_url"] == published.url and idp["metadata_fetched"]
    assert published.requests == [published.path(entra.tenant_id, APP_ID)]


def test_sign_in_works_with_an_idp_read_from_its_url(acs, from_url):
    from_url()
    assert acs.sign_in(User()).status_code == 200
    assert acs.users() == 1


def test_a_plain_http_url_is_422(admin):
    body = {"name": "entra", "protocol": "saml", "metadata_url": "http://127.0.0.1/m.xml"}
    assert admin.post("/idps", json=body).status_code == 422


def test_a_server_not_trusted_by_the_ca_bundle_is_422(admin, published, tmp_path, monkeypatch):
    other = make_server_tls(tmp_path)  # another CA: the server's certificate is not trusted
    with pytest.raises(metadata_fetch.MetadataFetchError, match="ConnectError"):
        metadata_fetch.fetch_metadata(published.url, str(other.ca_path))


def test_an_unreachable_url_is_422_and_stores_nothing(admin, app):
    body = {"name": "entra", "protocol": "saml", "metadata_url": "https://127.0.0.1:9/m.xml"}
    answer = admin.post("/idps", json=body)
    assert answer.status_code == 422 and "metadata_url" in answer.json["errors"]
    assert admin.get("/idps").json == []


def test_oversized_metadata_is_refused(admin, published):
    published.pad_bytes = MAX_METADATA_BYTES
    body = {"name": "entra", "protocol": "saml", "metadata_url": published.url}
    answer = admin.post("/idps", json=body)
    assert answer.status_code == 422
    assert "larger than" in answer.json["errors"]["metadata_url"][0]


def test_metadata_with_a_dtd_at_the_url_is_refused(admin, published, entra):
    published.document = '<!DOCTYPE x [<!ENTITY a "b">]>' + entra.metadata().split("?>", 1)[1]
    body = {"name": "entra", "protocol": "saml", "metadata_url": published.url}
    answer = admin.post("/idps", json=body)
    assert answer.status_code == 422 and "DTD" in answer.json["errors"]["metadata_url"][0]


def test_an_error_status_is_refused(admin, published):
    published.status = 404
    body = {"name": "entra", "protocol": "saml", "metadata_url": published.url}
    answer = admin.post("/idps", json=body)
    assert answer.status_code == 422 and "404" in answer.json["errors"]["metadata_url"][0]


def test_refresh_picks_up_a_rollover_with_two_certificates(
    acs, admin, from_url, published, entra, next_idp_key
):
    from_url()
    user = User()
    new_signed = acs.response(
        user, in_response_to=acs.request_id(), key=next_idp_key.key, cert=next_idp_key.cert
    )
    # signed by the next key, whose certificate the message carries: not trusted yet
    assert acs.post(new_signed).status_code == 403
    published.document = entra.metadata(certs=[entra.cert, next_idp_key.cert])
    answer = admin.post("/idps/entra/refresh")
    assert answer.status_code == 200, answer.json
    assert answer.json["changed"] is True
    assert answer.json["certificates"] == [entra.cert, next_idp_key.cert]
    for key in (entra, next_idp_key):
        response = acs.response(User(), in_response_to=acs.request_id(), key=key.key, cert=key.cert)
        assert acs.post(response).status_code == 200


def test_refresh_drops_the_old_certificate_when_entra_does(
    acs, admin, from_url, published, entra, next_idp_key, refused
):
    from_url()
    published.document = entra.metadata(certs=[next_idp_key.cert])
    assert admin.post("/idps/entra/refresh").json["changed"] is True
    refused(acs.post(acs.response(User(), in_response_to=acs.request_id())), "signature")


def test_refresh_of_unchanged_metadata_says_so(admin, from_url):
    from_url()
    answer = admin.post("/idps/entra/refresh")
    assert answer.status_code == 200 and answer.json["changed"] is False


def test_failed_refresh_keeps_the_certificates_and_records_the_error(
    acs, admin, from_url, published, entra
):
    from_url()
    published.status = 503
    answer = admin.post("/idps/entra/refresh")
    assert answer.status_code == 502
    shown = admin.get("/idps/entra").json
    assert shown["certificates"] == [entra.cert] and "503" in shown["metadata_error"]
    assert acs.sign_in(User()).status_code == 200


def test_refresh_without_a_metadata_url_is_422(admin, add_idp):
    add_idp()
    assert admin.post("/idps/entra/refresh").status_code == 422


def test_due_metadata_is_refreshed_in_the_background_by_a_sign_in(
    acs, app, from_url, published, entra, next_idp_key
):
    from_url()
    store = store_of(app.extensions["bridge"])
    idp_id = store.resolve("entra")
    stale = (datetime.now(UTC) - timedelta(days=2)).isoformat(timespec="seconds")
    store.update(idp_id, {"metadata_fetched": stale})
    published.document = entra.metadata(certs=[entra.cert, next_idp_key.cert])
    assert acs.login().status_code == 302  # notices the copy is due; does not wait
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(store.config(idp_id)["certificates"]) < 2:
        time.sleep(0.02)
    assert store.config(idp_id)["certificates"] == [entra.cert, next_idp_key.cert]
    assert len(published.requests) == 2


def test_a_fresh_copy_is_not_fetched_again(acs, from_url, published):
    from_url()
    for _ in range(3):
        assert acs.login().status_code == 302
    assert len(published.requests) == 1


def test_is_due_follows_the_refresh_interval():
    now = datetime.now(UTC)
    config = {
        "metadata_url": "https://x",
        "metadata_fetched": (now - timedelta(seconds=400)).isoformat(),
        "metadata_refresh_seconds": 300,
    }
    assert metadata_fetch.is_due(config, now)
    assert not metadata_fetch.is_due({**config, "metadata_refresh_seconds": 600}, now)
    assert not metadata_fetch.is_due({"metadata_fetched": None}, now)


def test_cli_refresh_reports_each_idp(app, from_url, published, entra, next_idp_key):
    from_url()
    published.document = entra.metadata(certs=[entra.cert, next_idp_key.cert])
    result = app.test_cli_runner().invoke(args=["idps", "refresh"])
    assert result.exit_code == 0, result.output
    assert "entra: changed" in result.output
    published.status = 500
    failed = app.test_cli_runner().invoke(args=["idps", "refresh"])
    assert failed.exit_code == 1 and "entra: failed" in failed.output


def test_cli_add_from_a_metadata_url(app, published, entra):
    args = ["idps", "add", "--name", "entra", "--metadata-url", published.url]
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output
    one = app.test_cli_runner().invoke(args=["idps", "refresh", "entra"])
    assert one.exit_code == 0 and "entra: unchanged" in one.output
