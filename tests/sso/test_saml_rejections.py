"""Every SAML Response the ACS must refuse: a 4xx page naming the reason, the reason in
the log (never the assertion's content), and nothing written to the directory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree
from signxml import XMLSigner
from signxml.algorithms import DigestAlgorithm, SignatureMethod

from bridge.sso.saml_validate import MAX_RESPONSE_BYTES
from tests.sso.saml_idp import DS, EXC_C14N, SAML, SAMLP, User, assertion_of, clone, encode


@pytest.fixture
def configured(add_idp):
    return add_idp()


def signed(acs, user: User, **kw) -> etree._Element:
    return acs.response(user, in_response_to=acs.request_id(), **kw)


def test_unsigned_response_is_refused(acs, configured, refused):
    user = User()
    answer = acs.post(acs.response(user, in_response_to=acs.request_id(), sign="none"))
    refused(answer, "unsigned", secret=user.upn)


def test_response_signed_by_another_key_is_refused(acs, configured, refused, stranger):
    # the stranger's certificate travels in the message's KeyInfo: it must not be trusted
    answer = acs.post(signed(acs, User(), key=stranger.key, cert=stranger.cert))
    refused(answer, "signature")


def test_second_unsigned_assertion_is_refused(acs, configured, refused):
    response = signed(acs, User())
    evil = clone(assertion_of(response))
    evil.set("ID", "_evil")
    evil.remove(evil.find(f"{{{DS}}}Signature"))
    evil.find(f"{{{SAML}}}Subject/{{{SAML}}}NameID").text = "admin@contoso.com"
    response.insert(2, evil)
    refused(acs.post(response), "assertion_count")


def test_signed_assertion_moved_under_another_element_is_refused(acs, configured, refused):
    response = signed(acs, User())
    assertion = assertion_of(response)
    response.remove(assertion)
    extensions = etree.SubElement(response, f"{{{SAMLP}}}Extensions")
    extensions.append(assertion)
    refused(acs.post(response), "wrapping")


def test_signed_assertion_moved_and_replaced_by_an_unsigned_one_is_refused(
    acs, configured, refused
):
    response = signed(acs, User())
    original = assertion_of(response)
    evil = clone(original)
    evil.remove(evil.find(f"{{{DS}}}Signature"))
    evil.find(f"{{{SAML}}}Subject/{{{SAML}}}NameID").text = "admin@contoso.com"
    response.replace(original, evil)
    extensions = etree.SubElement(response, f"{{{SAMLP}}}Extensions")
    extensions.append(original)
    refused(acs.post(response), "assertion_count")


def test_assertion_tampered_after_signing_is_refused(acs, configured, refused):
    response = signed(acs, User())
    name_id = assertion_of(response).find(f"{{{SAML}}}Subject/{{{SAML}}}NameID")
    name_id.text = "admin@contoso.com"
    refused(acs.post(response), "digest")


def test_expired_assertion_is_refused(acs, configured, refused):
    old = datetime.now(UTC) - timedelta(hours=3)
    refused(acs.post(signed(acs, User(), now=old)), "expired")


def test_assertion_not_yet_valid_is_refused(acs, configured, refused):
    later = datetime.now(UTC) + timedelta(hours=1)
    refused(acs.post(signed(acs, User(), now=later)), "not_yet_valid")


def test_clock_skew_lets_a_slightly_early_assertion_in(acs, add_idp):
    add_idp(clock_skew_seconds=600)
    soon = datetime.now(UTC) + timedelta(minutes=8)  # NotBefore is 5 minutes before "now"
    assert acs.post(signed(acs, User(), now=soon)).status_code == 200


def test_wrong_audience_is_refused(acs, configured, refused):
    refused(acs.post(signed(acs, User(), audience="https://other.example.com")), "audience")


def test_wrong_recipient_is_refused(acs, configured, refused):
    answer = acs.post(signed(acs, User(), recipient="https://other.example.com/acs"))
    refused(answer, "recipient")


def test_wrong_destination_is_refused(acs, configured, refused):
    answer = acs.post(signed(acs, User(), destination="https://other.example.com/acs"))
    refused(answer, "destination")


def test_wrong_issuer_is_refused(acs, configured, refused):
    refused(acs.post(signed(acs, User(), issuer="https://sts.windows.net/other/")), "issuer")


def test_unknown_in_response_to_is_refused(acs, configured, refused):
    answer = acs.post(acs.response(User(), in_response_to="_never-issued"))
    refused(answer, "in_response_to")


def test_in_response_to_answered_twice_is_refused(acs, configured, refused):
    rid = acs.request_id()
    first = acs.response(User(), in_response_to=rid)
    second = acs.response(User(), in_response_to=rid)
    assert acs.post(first).status_code == 200
    state = acs.state
    users, changes = acs.users(), acs.changes()
    answer = acs.post(second)
    assert answer.status_code == 403 and b"(in_response_to)" in answer.data
    assert (state.directory.count("user"), acs.changes()) == (users, changes)


def test_in_response_to_of_another_idp_is_refused(acs, admin, entra, configured, refused):
    other = entra.config(name="second")
    assert admin.post("/idps", json=other).status_code == 201
    rid = acs.request_id(idp="second")
    refused(acs.post(acs.response(User(), in_response_to=rid)), "in_response_to")


def test_idp_initiated_response_is_refused_by_default(acs, configured, refused):
    refused(acs.post(acs.response(User())), "in_response_to")


def test_replayed_assertion_is_refused(acs, add_idp):
    add_idp(idp_initiated=True)
    response = acs.response(User())
    assert acs.post(response).status_code == 200
    changes = acs.changes()
    answer = acs.post(response)
    assert answer.status_code == 403 and b"(replay)" in answer.data
    assert acs.users() == 1 and acs.changes() == changes


def test_dtd_and_entities_are_refused(acs, configured, refused):
    xml = etree.tostring(signed(acs, User()))
    payload = b'<!DOCTYPE r [<!ENTITY x "boom">]>' + xml
    refused(acs.post(encode(payload)), "dtd", 400)


def test_external_entity_is_refused(acs, configured, refused):
    payload = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<samlp:Response xmlns:samlp="' + SAMLP.encode() + b'">&x;</samlp:Response>'
    )
    refused(acs.post(encode(payload)), "dtd", 400)


def test_xslt_transform_is_refused(acs, configured, refused):
    response = signed(acs, User())
    transforms = response.find(f".//{{{DS}}}Transforms")
    xslt = etree.SubElement(transforms, f"{{{DS}}}Transform")
    xslt.set("Algorithm", "http://www.w3.org/TR/1999/REC-xslt-19991116")
    refused(acs.post(response), "transform")


def test_oversized_response_is_refused_before_parsing(acs, configured, refused):
    refused(acs.post("A" * (MAX_RESPONSE_BYTES + 4)), "too_large", 413)


def test_body_far_over_the_cap_is_refused(acs, configured, refused):
    refused(acs.post("A" * (MAX_RESPONSE_BYTES + 20000)), "too_large", 413)


def test_not_base64_is_refused(acs, configured, refused):
    refused(acs.post("not base64!"), "malformed", 400)


def test_not_xml_is_refused(acs, configured, refused):
    refused(acs.post(encode(b"<samlp:Response")), "malformed", 400)


def test_relay_state_to_another_host_is_refused(acs, configured, refused):
    answer = acs.post(signed(acs, User()), relay_state="https://evil.example.com/")
    refused(answer, "redirect", 400)


@pytest.mark.parametrize(
    "url",
    [
        "https://app.example.com.evil.com/",
        "https://app.example.com@evil.com/",
        "http://app.example.com/",
        "https://app.example.com:8443/",
        "//evil.example.com/",
        "javascript:alert(1)",
        "https://app.example.com\\@evil.com/",
    ],
)
def test_relay_state_lookalikes_are_refused(acs, configured, refused, url):
    refused(acs.post(signed(acs, User()), relay_state=url), "redirect", 400)


def test_login_with_next_to_another_host_is_refused(acs, configured, refused):
    refused(acs.login("https://evil.example.com/"), "redirect", 400)


def test_unknown_idp_is_404(acs, configured, refused):
    refused(acs.post(signed(acs, User()), idp="nobody"), "unknown_idp", 404)


def test_disabled_user_is_refused(acs, configured, scim, caplog):
    from tests.factories import entra_user

    user = User()
    created = scim.post("/Users", json=entra_user(userName=user.upn, active=False))
    assert created.status_code == 201
    changes = acs.changes()
    answer = acs.sign_in(user)
    assert answer.status_code == 403 and b"(disabled)" in answer.data
    assert acs.changes() == changes and acs.users() == 1
    assert acs.state.directory.get("user", created.json["id"]).doc["active"] is False


def test_sign_in_from_another_tenant_is_refused_when_tenant_is_pinned(acs, add_idp, refused):
    add_idp(tenant_id="00000000-0000-0000-0000-000000000000")
    refused(acs.sign_in(User()), "tenant")


def test_audience_must_be_in_every_restriction(acs, configured, refused):
    response = acs.response(User(), in_response_to=acs.request_id(), sign="none")
    conditions = assertion_of(response).find(f"{{{SAML}}}Conditions")
    extra = etree.SubElement(conditions, f"{{{SAML}}}AudienceRestriction")
    etree.SubElement(extra, f"{{{SAML}}}Audience").text = "https://other.example.com"
    from signxml import XMLSigner

    from tests.sso.saml_idp import EXC_C14N

    placeholder = etree.Element(f"{{{DS}}}Signature", Id="placeholder")
    assertion_of(response).insert(1, placeholder)
    response = XMLSigner(c14n_algorithm=EXC_C14N).sign(
        response, key=acs.entra.key, cert=acs.entra.cert,
        reference_uri=assertion_of(response).get("ID"),
    )  # fmt: skip
    refused(acs.post(response), "audience")


def test_an_element_sharing_the_assertion_id_is_refused(acs, configured, refused):
    response = signed(acs, User())
    decoy = etree.SubElement(response, f"{{{SAMLP}}}Extensions")
    decoy.set("ID", assertion_of(response).get("ID"))
    refused(acs.post(response), "wrapping")


def test_assertion_added_to_a_signed_response_is_refused(acs, configured, refused):
    response = signed(acs, User(), sign="response")
    evil = clone(assertion_of(response))
    evil.set("ID", "_evil")
    response.append(evil)
    refused(acs.post(response), "assertion_count")


def test_response_signature_does_not_cover_an_edited_assertion(acs, configured, refused):
    response = signed(acs, User(), sign="response")
    assertion_of(response).find(f"{{{SAML}}}Subject/{{{SAML}}}NameID").text = "admin@contoso.com"
    refused(acs.post(response), "digest")


def test_response_of_another_saml_version_is_refused(acs, configured, refused):
    response = signed(acs, User())
    response.set("Version", "1.1")
    refused(acs.post(response), "malformed", 400)


def _signed_with(acs, signer: XMLSigner, key) -> etree._Element:
    response = acs.response(User(), in_response_to=acs.request_id(), sign="none")
    assertion = assertion_of(response)
    placeholder = etree.Element(f"{{{DS}}}Signature", Id="placeholder")
    assertion.find(f"{{{SAML}}}Issuer").addnext(placeholder)
    return signer.sign(response, key=key, cert=acs.entra.cert, reference_uri=assertion.get("ID"))


class Sha1Signer(XMLSigner):
    """signxml refuses to make SHA-1 signatures; an IdP set to SHA-1 makes them."""

    def check_deprecated_methods(self) -> None:
        pass


def test_rsa_sha1_signature_is_refused(acs, configured, refused, entra):
    signer = Sha1Signer(
        signature_algorithm=SignatureMethod.RSA_SHA1,
        digest_algorithm=DigestAlgorithm.SHA1,
        c14n_algorithm=EXC_C14N,
    )
    refused(acs.post(_signed_with(acs, signer, entra.key)), "signature")


def test_hmac_signature_is_refused(acs, configured, refused):
    signer = XMLSigner(signature_algorithm=SignatureMethod.HMAC_SHA256, c14n_algorithm=EXC_C14N)
    refused(acs.post(_signed_with(acs, signer, b"a key anyone could pick")), "signature")
