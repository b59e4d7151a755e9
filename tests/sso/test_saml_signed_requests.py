"""Signed AuthnRequests with the HTTP-Redirect binding (SAML 2.0 bindings §3.4.4.1): the
signature is over ``SAMLRequest=…&RelayState=…&SigAlg=…`` exactly as sent, RSA-SHA256
with the IdP's SP signing key, whose certificate our SP metadata publishes."""

from __future__ import annotations

import base64
from urllib.parse import unquote_plus, urlsplit

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from lxml import etree

from tests.sso.saml_idp import User

RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"


@pytest.fixture
def signing_idp(add_idp, sp_signing):
    key, cert = sp_signing
    return add_idp(sign_requests=True, sp_signing_key=key, sp_signing_certificate=cert)


def raw_query(location: str) -> list[tuple[str, str]]:
    """The query's parameters as sent (still URL-encoded), in order."""
    query = urlsplit(location).query
    return [tuple(part.split("=", 1)) for part in query.split("&")]  # type: ignore[misc]


def verify(cert_pem: str, signed: str, signature_b64: str) -> None:
    public = x509.load_pem_x509_certificate(cert_pem.encode()).public_key()
    public.verify(
        base64.b64decode(unquote_plus(signature_b64)),
        signed.encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )


def test_login_signs_the_query_string_with_rsa_sha256(acs, signing_idp, sp_signing):
    answer = acs.login("https://app.example.com/welcome?x=1&y=2")
    assert answer.status_code == 302
    params = raw_query(answer.headers["Location"])
    assert [name for name, _ in params] == ["SAMLRequest", "RelayState", "SigAlg", "Signature"]
    assert unquote_plus(params[2][1]) == RSA_SHA256
    signed = "&".join(f"{n}={v}" for n, v in params[:3])
    verify(sp_signing[1], signed, params[3][1])


def test_signature_without_relay_state_covers_request_and_sig_alg(acs, signing_idp, sp_signing):
    params = raw_query(acs.login().headers["Location"])
    assert [name for name, _ in params] == ["SAMLRequest", "SigAlg", "Signature"]
    verify(sp_signing[1], "&".join(f"{n}={v}" for n, v in params[:2]), params[2][1])


def test_the_signature_does_not_survive_a_changed_relay_state(acs, signing_idp, sp_signing):
    params = raw_query(acs.login("https://app.example.com/a").headers["Location"])
    forged = (
        f"{params[0][0]}={params[0][1]}&RelayState=https%3A%2F%2Fevil.example&SigAlg={params[2][1]}"
    )
    with pytest.raises(InvalidSignature):
        verify(sp_signing[1], forged, params[3][1])


def test_signed_request_still_answers_once(acs, signing_idp):
    rid = acs.request_id()
    assert acs.post(acs.response(User(), in_response_to=rid)).status_code == 200
    assert acs.users() == 1


def test_requests_are_unsigned_unless_the_idp_wants_them(acs, add_idp, sp_signing):
    key, cert = sp_signing
    add_idp(sp_signing_key=key, sp_signing_certificate=cert)
    names = [name for name, _ in raw_query(acs.login().headers["Location"])]
    assert names == ["SAMLRequest"]


def test_sp_metadata_publishes_the_signing_certificate(app, signing_idp, sp_signing):
    answer = app.test_client().get("/sso/saml/entra/metadata")
    root = etree.fromstring(answer.data)
    sp = root.find(f"{{{MD}}}SPSSODescriptor")
    assert sp.get("AuthnRequestsSigned") == "true"
    descriptor = sp.find(f"{{{MD}}}KeyDescriptor[@use='signing']")
    der = descriptor.find(f".//{{{DS}}}X509Certificate").text
    assert der == "".join(sp_signing[1].strip().splitlines()[1:-1])


def test_signing_key_is_write_only_and_encrypted_at_rest(admin, signing_idp, sp_signing, app):
    shown = admin.get("/idps/entra").json
    assert shown["has_sp_signing_key"] is True and "sp_signing_key" not in shown
    assert shown["sp_signing_certificate"].strip() == sp_signing[1].strip()
    state = app.extensions["bridge"]
    stored = b"".join(state.redis.hvals(f"{state.settings.key_prefix}:sso:idps"))
    body = sp_signing[0].strip().splitlines()[1]
    assert stored and body.encode() not in stored


def test_sign_requests_without_a_key_is_422(admin, entra):
    answer = admin.post("/idps", json=entra.config(sign_requests=True))
    assert answer.status_code == 422
    assert "sp_signing_key" in answer.json["errors"]


def test_a_key_that_is_not_the_certificates_is_422(admin, entra, sp_signing, sp_encryption):
    body = entra.config(sp_signing_key=sp_encryption[0], sp_signing_certificate=sp_signing[1])
    answer = admin.post("/idps", json=body)
    assert answer.status_code == 422
    assert "does not belong" in answer.json["errors"]["sp_signing_key"][0]


def test_a_short_rsa_key_is_422(admin, entra, sp_signing):
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = short.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    body = entra.config(sp_signing_key=pem, sp_signing_certificate=sp_signing[1])
    answer = admin.post("/idps", json=body)
    assert answer.status_code == 422
    assert "1024 bits" in answer.json["errors"]["sp_signing_key"][0]


def test_metadata_wanting_signed_requests_turns_signing_on(admin, entra, sp_signing):
    key, cert = sp_signing
    body = {
        "name": "entra",
        "protocol": "saml",
        "metadata_xml": entra.metadata(want_signed=True),
        "sp_signing_key": key,
        "sp_signing_certificate": cert,
    }
    answer = admin.post("/idps", json=body)
    assert answer.status_code == 201, answer.json
    assert answer.json["sign_requests"] is True


def test_patch_can_turn_signing_on_with_the_key_kept(admin, acs, add_idp, sp_signing):
    key, cert = sp_signing
    add_idp(sp_signing_key=key, sp_signing_certificate=cert)
    answer = admin.patch("/idps/entra", json={"sign_requests": True})
    assert answer.status_code == 200, answer.json
    assert "Signature" in dict(raw_query(acs.login().headers["Location"]))


def test_cli_reads_the_signing_key_from_stdin_and_never_prints_it(app, entra, sp_signing, tmp_path):
    key, cert = sp_signing
    cert_file = tmp_path / "sp.pem"
    cert_file.write_text(cert)
    idp_cert = tmp_path / "idp.pem"
    idp_cert.write_text(entra.cert)
    args = [
        "idps", "add", "--name", "entra", "--entity-id", entra.entity_id,
        "--sso-url", entra.sso_url, "--cert-file", str(idp_cert), "--sign-requests",
        "--sp-signing-key-file", "-", "--sp-signing-cert-file", str(cert_file),
    ]  # fmt: skip
    result = app.test_cli_runner().invoke(args=args, input=key)
    assert result.exit_code == 0, result.output
    assert key.splitlines()[1] not in result.output
    shown = app.test_cli_runner().invoke(args=["idps", "show", "entra"])
    assert '"has_sp_signing_key": true' in shown.output
    assert key.splitlines()[1] not in shown.output


def test_a_signing_key_without_secret_keys_configured_is_409(settings, entra, sp_signing):
    import dataclasses

    from app import create_app
    from tests.conftest import AdminClient

    app = create_app(dataclasses.replace(settings, secret_keys=()))
    _, token = app.extensions["bridge"].admin_tokens.create("tests")
    key, cert = sp_signing
    body = entra.config(sp_signing_key=key, sp_signing_certificate=cert)
    answer = AdminClient(app.test_client(), token).post("/idps", json=body)
    assert answer.status_code == 409
    assert "BRIDGE_SECRET_KEYS" in answer.json["message"]
    app.extensions["bridge"].redis.close()
