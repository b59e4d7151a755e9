"""``/admin/idps`` and ``flask --app app idps``: identity providers managed like targets."""

from __future__ import annotations

from tests.sso.conftest import ACS_URL, SP_ENTITY_ID


def oidc_body(**overrides) -> dict:
    body = {
        "name": "entra-oidc",
        "protocol": "oidc",
        "authority": "https://login.microsoftonline.com/contoso.onmicrosoft.com",
        "client_id": "11111111-2222-3333-4444-555555555555",
        "client_secret": "oidc-secret-plaintext",
    }
    body.update(overrides)
    return body


def test_create_shows_our_identifier_and_reply_url(admin, entra):
    answer = admin.post("/idps", json=entra.config())
    assert answer.status_code == 201, answer.json
    assert answer.json["sp"] == {"entity_id": SP_ENTITY_ID, "acs_url": ACS_URL}
    assert answer.json["update"] == "each_login" and answer.json["idp_initiated"] is False


def test_create_from_federation_metadata(admin, entra):
    answer = admin.post(
        "/idps", json={"name": "entra", "protocol": "saml", "metadata_xml": entra.metadata()}
    )
    assert answer.status_code == 201, answer.json
    assert answer.json["entity_id"] == entra.entity_id
    assert answer.json["sso_url"] == entra.sso_url
    assert answer.json["certificates"] == [entra.cert]


def test_metadata_with_a_dtd_is_refused(admin, entra):
    xml = '<!DOCTYPE x [<!ENTITY a "b">]>' + entra.metadata().split("?>", 1)[1]
    answer = admin.post("/idps", json={"name": "entra", "protocol": "saml", "metadata_xml": xml})
    assert answer.status_code == 422
    assert "metadata_xml" in answer.json["errors"]


def test_saml_without_certificates_or_metadata_is_422(admin, entra):
    body = entra.config()
    del body["certificates"]
    answer = admin.post("/idps", json=body)
    assert answer.status_code == 422 and "certificates" in answer.json["errors"]["json"]


def test_a_certificate_that_does_not_parse_is_422(admin, entra):
    answer = admin.post("/idps", json=entra.config(certificates=["not a certificate"]))
    assert answer.status_code == 422 and "certificates" in answer.json["errors"]


def test_more_than_two_certificates_are_422(admin, entra):
    answer = admin.post("/idps", json=entra.config(certificates=[entra.cert] * 3))
    assert answer.status_code == 422


def test_a_name_that_cannot_be_in_a_url_is_422(admin, entra):
    assert admin.post("/idps", json=entra.config(name="a/b")).status_code == 422


def test_names_are_unique(admin, entra):
    assert admin.post("/idps", json=entra.config()).status_code == 201
    assert admin.post("/idps", json=entra.config(name="ENTRA")).status_code == 409


def test_client_secret_is_write_only_and_encrypted(admin, redis_client):
    created = admin.post("/idps", json=oidc_body())
    assert created.status_code == 201, created.json
    assert "client_secret" not in created.json and created.json["has_client_secret"] is True
    shown = admin.get("/idps/entra-oidc")
    listed = admin.get("/idps")
    for answer in (created, shown, listed):
        assert b"oidc-secret-plaintext" not in answer.data
    assert b"oidc-secret-plaintext" not in b"".join(redis_client.hvals("bridge:sso:idps"))


def test_show_and_delete_by_name(admin, entra):
    created = admin.post("/idps", json=entra.config()).json
    assert admin.get(f"/idps/{created['id']}").json["name"] == "entra"
    assert admin.delete("/idps/entra").status_code == 204
    assert admin.get("/idps/entra").status_code == 404
    assert admin.get("/idps").json == []


def test_admin_metadata_is_our_sp_metadata(admin, entra):
    admin.post("/idps", json=entra.config())
    answer = admin.get("/idps/entra/metadata")
    assert answer.status_code == 200
    assert f'Location="{ACS_URL}"'.encode() in answer.data


def test_idps_need_an_admin_token(app, scim):
    assert app.test_client().get("/admin/idps").status_code == 401
    assert scim.client.get("/admin/idps", headers=scim.headers).status_code == 401


# --- CLI ----------------------------------------------------------------------------------
def run(app, *args: str, input: str | None = None):
    return app.test_cli_runner().invoke(args=list(args), input=input)


def test_cli_add_from_metadata_prints_identifier_and_reply_url(app, entra, tmp_path):
    path = tmp_path / "federation.xml"
    path.write_text(entra.metadata())
    result = run(
        app, "idps", "add", "--name", "entra", "--metadata-file", str(path),
        "--allow-redirect", "https://app.example.com/", "--update", "first_login",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"Identifier (Entity ID): {SP_ENTITY_ID}" in result.output
    assert f"Reply URL (ACS):        {ACS_URL}" in result.output
    shown = run(app, "idps", "show", "entra")
    assert entra.entity_id in shown.output and '"update": "first_login"' in shown.output


def test_cli_add_from_certificate_files(app, entra, tmp_path):
    cert = tmp_path / "entra.pem"
    cert.write_text(entra.cert)
    result = run(
        app, "idps", "add", "--name", "entra", "--entity-id", entra.entity_id,
        "--sso-url", entra.sso_url, "--cert-file", str(cert), "--idp-initiated",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "entra" in run(app, "idps", "list").output


def test_cli_reads_the_client_secret_from_stdin_and_never_prints_it(app, redis_client):
    result = run(
        app, "idps", "add", "--name", "oidc", "--protocol", "oidc",
        "--authority", "https://login.microsoftonline.com/contoso",
        "--client-id", "abc", "--client-secret-file", "-", input="s3cret-from-stdin\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    outputs = result.output + run(app, "idps", "show", "oidc").output
    assert "s3cret-from-stdin" not in outputs
    store = app.extensions["bridge"]
    from bridge.sso.idp_admin import store_of

    assert store_of(store).get("oidc")["client_secret"] == "s3cret-from-stdin"


def test_cli_reports_invalid_input(app):
    result = run(app, "idps", "add", "--name", "entra")
    assert result.exit_code == 1
    assert "entity_id" in result.output and "certificates" in result.output


def test_cli_metadata_and_remove(app, entra, tmp_path):
    cert = tmp_path / "entra.pem"
    cert.write_text(entra.cert)
    run(
        app, "idps", "add", "--name", "entra", "--entity-id", entra.entity_id,
        "--sso-url", entra.sso_url, "--cert-file", str(cert),
    )  # fmt: skip
    metadata = run(app, "idps", "metadata", "entra")
    assert metadata.exit_code == 0 and ACS_URL in metadata.output
    assert run(app, "idps", "remove", "entra", "--yes").exit_code == 0
    assert run(app, "idps", "show", "entra").exit_code == 1


def test_patch_adds_the_next_certificate_for_a_rollover(admin, entra):
    from tests.sso.saml_idp import TestIdp

    admin.post("/idps", json=entra.config())
    nxt = TestIdp(tenant_id=entra.tenant_id)
    answer = admin.patch("/idps/entra", json={"certificates": [entra.cert, nxt.cert]})
    assert answer.status_code == 200, answer.json
    assert answer.json["certificates"] == [entra.cert, nxt.cert]
    assert admin.get("/idps/entra").json["certificates"] == [entra.cert, nxt.cert]


def test_patch_cannot_rename_or_empty_an_idp(admin, entra):
    admin.post("/idps", json=entra.config())
    assert admin.patch("/idps/entra", json={"name": "other"}).status_code == 422
    assert admin.patch("/idps/entra", json={"certificates": []}).status_code == 422


def test_patch_keeps_the_client_secret_left_out(admin, app):
    from bridge.sso.idp_admin import store_of

    admin.post("/idps", json=oidc_body())
    answer = admin.patch("/idps/entra-oidc", json={"update": "never"})
    assert answer.status_code == 200, answer.json
    idp = store_of(app.extensions["bridge"]).get("entra-oidc")
    assert idp["client_secret"] == "oidc-secret-plaintext" and idp["update"] == "never"


def test_cli_update_replaces_the_certificates(app, entra, tmp_path):
    from tests.sso.saml_idp import TestIdp

    cert = tmp_path / "entra.pem"
    cert.write_text(entra.cert)
    nxt = tmp_path / "next.pem"
    nxt.write_text(TestIdp().cert)
    run(
        app, "idps", "add", "--name", "entra", "--entity-id", entra.entity_id,
        "--sso-url", entra.sso_url, "--cert-file", str(cert),
    )  # fmt: skip
    result = run(app, "idps", "update", "entra", "--cert-file", str(cert), "--cert-file", str(nxt))
    assert result.exit_code == 0, result.output
    from bridge.sso.idp_admin import store_of

    assert len(store_of(app.extensions["bridge"]).get("entra")["certificates"]) == 2


def test_show_counts_sign_ins_by_outcome(admin, acs, add_idp):
    from tests.sso.saml_idp import User

    add_idp()
    user = User()
    acs.sign_in(user)
    acs.sign_in(user)
    acs.post(acs.response(User(), in_response_to="_unknown"))
    assert admin.get("/idps/entra").json["stats"] == {
        "created": 1,
        "unchanged": 1,
        "refused:in_response_to": 1,
    }
