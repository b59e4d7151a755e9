"""Encrypted assertions (Entra's token encryption, XML Encryption 1.1): decrypted with the
SP's encryption key, then validated exactly like a plain assertion. Weak algorithms are
refused, and until the assertion's signature holds every refusal reads ``decrypt``."""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree
from signxml import XMLSigner

from tests.sso.saml_idp import (
    AES128_GCM,
    AES256_GCM,
    DS,
    EXC_C14N,
    RSA_1_5,
    RSA_OAEP,
    SAML,
    User,
    assertion_of,
    encrypt_assertion,
    new_key_and_cert,
)

XENC = "http://www.w3.org/2001/04/xmlenc#"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"


@pytest.fixture
def encrypting(add_idp, sp_encryption):
    key, cert = sp_encryption
    return add_idp(sp_encryption_key=key, sp_encryption_certificate=cert)


def encrypted(acs, sp_encryption, user: User | None = None, **kw) -> etree._Element:
    """An Entra-shaped response to an AuthnRequest of ours, its signed assertion encrypted
    (AES-256-CBC, RSA-OAEP-MGF1P unless ``kw`` says otherwise)."""
    enc = {k: kw.pop(k) for k in ("block", "transport", "mgf", "plaintext", "to") if k in kw}
    response = acs.response(user or User(), in_response_to=acs.request_id(), **kw)
    return encrypt_assertion(response, enc.pop("to", sp_encryption[1]), **enc)


def test_encrypted_assertion_signs_the_user_in(acs, encrypting, sp_encryption):
    user = User()
    answer = acs.post(encrypted(acs, sp_encryption, user))
    assert answer.status_code == 200, answer.data
    assert acs.state.directory.find("user", "unique", "userName", user.upn)


def test_aes_gcm_with_rsa_oaep_sha256_mgf_is_accepted(acs, encrypting, sp_encryption):
    response = encrypted(
        acs,
        sp_encryption,
        block=AES256_GCM,
        transport=RSA_OAEP,
        mgf="http://www.w3.org/2009/xmlenc11#mgf1sha256",
    )
    assert acs.post(response).status_code == 200
    assert acs.users() == 1


def test_aes_128_gcm_is_accepted(acs, encrypting, sp_encryption):
    assert acs.post(encrypted(acs, sp_encryption, block=AES128_GCM)).status_code == 200


def test_signed_response_around_an_encrypted_assertion_is_accepted(
    acs, encrypting, sp_encryption, entra
):
    # Entra's "Sign SAML response": the signature covers the EncryptedAssertion
    response = acs.response(User(), in_response_to=acs.request_id(), sign="none")
    encrypt_assertion(response, sp_encryption[1])
    issuer = response.find(f"{{{SAML}}}Issuer")
    issuer.addnext(etree.Element(f"{{{DS}}}Signature", Id="placeholder"))
    signed = XMLSigner(c14n_algorithm=EXC_C14N).sign(
        response, key=entra.key, cert=entra.cert, reference_uri=response.get("ID")
    )
    assert acs.post(signed).status_code == 200
    assert acs.users() == 1


def test_rsa_1_5_key_transport_is_refused(acs, encrypting, sp_encryption, refused):
    refused(acs.post(encrypted(acs, sp_encryption, transport=RSA_1_5)), "weak_encryption")


def test_unknown_block_cipher_is_refused(acs, encrypting, sp_encryption, refused):
    response = encrypted(acs, sp_encryption)
    method = response.find(f".//{{{XENC}}}EncryptedData/{{{XENC}}}EncryptionMethod")
    method.set("Algorithm", XENC + "tripledes-cbc")
    refused(acs.post(response), "weak_encryption")


def test_assertion_encrypted_for_another_sp_is_refused(acs, encrypting, sp_encryption, refused):
    _, other = new_key_and_cert("another SP")
    refused(acs.post(encrypted(acs, sp_encryption, to=other)), "decrypt")


def test_tampered_ciphertext_is_refused_alike(acs, encrypting, sp_encryption, refused):
    response = encrypted(acs, sp_encryption)
    value = response.find(f".//{{{XENC}}}EncryptedData/{{{XENC}}}CipherData/{{{XENC}}}CipherValue")
    raw = bytearray(base64.b64decode(value.text))
    raw[40] ^= 0x01  # one bit of the second block: CBC garbles one block, flips one bit
    value.text = base64.b64encode(bytes(raw)).decode()
    refused(acs.post(response), "decrypt")


def test_encrypted_assertion_signed_by_another_key_is_refused_as_decrypt(
    acs, encrypting, sp_encryption, refused, stranger, caplog
):
    response = encrypted(acs, sp_encryption, key=stranger.key, cert=stranger.cert)
    refused(acs.post(response), "decrypt")
    # the real reason stays in the log for the operator
    assert any("signature" in r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)


def test_encrypted_unsigned_assertion_is_refused(acs, encrypting, sp_encryption, refused):
    refused(acs.post(encrypted(acs, sp_encryption, sign="none")), "decrypt")


def test_plaintext_with_a_dtd_is_refused(acs, encrypting, sp_encryption, refused):
    plaintext = b'<!DOCTYPE a [<!ENTITY x "y">]><Assertion xmlns="' + SAML.encode() + b'"/>'
    refused(acs.post(encrypted(acs, sp_encryption, plaintext=plaintext)), "decrypt")


def test_encrypted_and_plain_assertion_together_are_refused(
    acs, encrypting, sp_encryption, refused
):
    user = User()
    response = encrypted(acs, sp_encryption, user)
    plain = acs.response(user, in_response_to=acs.request_id())
    response.append(assertion_of(plain))
    refused(acs.post(response), "decrypt")


def test_decrypted_assertion_is_still_checked_for_expiry(acs, encrypting, sp_encryption, refused):
    old = datetime.now(UTC) - timedelta(hours=3)
    refused(acs.post(encrypted(acs, sp_encryption, now=old)), "expired")


def test_decrypted_assertion_is_still_checked_for_audience(acs, encrypting, sp_encryption, refused):
    response = encrypted(acs, sp_encryption, audience="https://other.example.com")
    refused(acs.post(response), "audience")


def test_encrypted_assertion_replayed_is_refused(acs, encrypting, sp_encryption, refused):
    response = encrypted(acs, sp_encryption, assertion_id="_once")
    assert acs.post(response).status_code == 200
    again = encrypted(acs, sp_encryption, assertion_id="_once")
    answer = acs.post(again)
    assert answer.status_code == 403 and b"(replay)" in answer.data
    assert acs.users() == 1


def test_encrypted_assertion_without_a_key_configured_is_refused(
    acs, add_idp, sp_encryption, refused
):
    add_idp()
    refused(acs.post(encrypted(acs, sp_encryption)), "encrypted")


def test_require_encryption_refuses_a_plain_assertion(acs, add_idp, sp_encryption, refused):
    key, cert = sp_encryption
    add_idp(sp_encryption_key=key, sp_encryption_certificate=cert, require_encryption=True)
    refused(acs.post(acs.response(User(), in_response_to=acs.request_id())), "unencrypted")


def test_require_encryption_without_a_key_is_422(admin, entra):
    answer = admin.post("/idps", json=entra.config(require_encryption=True))
    assert answer.status_code == 422 and "sp_encryption_key" in answer.json["errors"]


def test_sp_metadata_publishes_the_encryption_certificate(app, encrypting, sp_encryption):
    root = etree.fromstring(app.test_client().get("/sso/saml/entra/metadata").data)
    descriptor = root.find(f"{{{MD}}}SPSSODescriptor/{{{MD}}}KeyDescriptor[@use='encryption']")
    der = descriptor.find(f".//{{{DS}}}X509Certificate").text
    assert der == "".join(sp_encryption[1].strip().splitlines()[1:-1])
    methods = [m.get("Algorithm") for m in descriptor.findall(f"{{{MD}}}EncryptionMethod")]
    assert RSA_1_5 not in methods and AES256_GCM in methods


def test_encryption_key_is_write_only_and_encrypted_at_rest(admin, app, encrypting, sp_encryption):
    shown = admin.get("/idps/entra").json
    assert shown["has_sp_encryption_key"] is True and "sp_encryption_key" not in shown
    state = app.extensions["bridge"]
    stored = b"".join(state.redis.hvals(f"{state.settings.key_prefix}:sso:idps"))
    assert sp_encryption[0].strip().splitlines()[1].encode() not in stored


def test_patch_with_a_certificate_not_of_the_kept_key_is_422(admin, encrypting):
    _, other = new_key_and_cert("another SP")
    answer = admin.patch("/idps/entra", json={"sp_encryption_certificate": other})
    assert answer.status_code == 422
    assert "does not belong" in answer.json["errors"]["sp_encryption_key"][0]


def test_patch_can_turn_require_encryption_on_with_the_key_kept(admin, encrypting):
    answer = admin.patch("/idps/entra", json={"require_encryption": True})
    assert answer.status_code == 200 and answer.json["require_encryption"] is True


def test_encrypted_key_beside_the_data_is_found(acs, encrypting, sp_encryption):
    # SAML core §2.3.4 lets the EncryptedKey be a sibling of EncryptedData (ADFS, Shibboleth)
    response = encrypted(acs, sp_encryption)
    holder = response.find(f"{{{SAML}}}EncryptedAssertion")
    key = holder.find(f".//{{{XENC}}}EncryptedKey")
    key.getparent().remove(key)
    holder.append(key)
    assert acs.post(response).status_code == 200
    assert acs.users() == 1
