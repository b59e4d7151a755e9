"""Discovery endpoints (RFC 7644 §4, RFC 7643 §5–7) describe what the bridge supports."""

from __future__ import annotations

from tests.factories import ENTERPRISE, GROUP_SCHEMA, USER_SCHEMA


def test_service_provider_config_advertises_patch_bulk_filter_sort_etag(scim):
    config = scim.get("/ServiceProviderConfig").json
    assert config["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"]
    assert config["patch"]["supported"] is True
    assert config["bulk"] == {"supported": True, "maxOperations": 1000, "maxPayloadSize": 1048576}
    assert config["filter"]["supported"] is True
    assert config["sort"]["supported"] is True
    assert config["etag"]["supported"] is True
    assert config["changePassword"]["supported"] is False
    assert config["authenticationSchemes"][0]["type"] == "oauthbearertoken"


def test_resource_types_list_users_and_groups(scim):
    body = scim.get("/ResourceTypes").json
    by_id = {r["id"]: r for r in body["Resources"]}
    assert body["totalResults"] == 2
    assert by_id["User"]["endpoint"] == "/Users"
    assert by_id["User"]["schema"] == USER_SCHEMA
    assert by_id["User"]["schemaExtensions"] == [{"schema": ENTERPRISE, "required": False}]
    assert by_id["Group"]["schema"] == GROUP_SCHEMA


def test_resource_type_by_id(scim):
    assert scim.get("/ResourceTypes/User").json["name"] == "User"
    assert scim.get("/ResourceTypes/Nope").status_code == 404


def test_schemas_list_core_and_enterprise(scim):
    ids = {s["id"] for s in scim.get("/Schemas").json["Resources"]}
    assert ids == {USER_SCHEMA, ENTERPRISE, GROUP_SCHEMA}


def test_schema_by_urn_describes_attributes(scim):
    schema = scim.get(f"/Schemas/{USER_SCHEMA}").json
    user_name = next(a for a in schema["attributes"] if a["name"] == "userName")
    assert user_name["uniqueness"] == "server"
    assert user_name["caseExact"] is False
    assert user_name["required"] is True


def test_unknown_schema_is_404(scim):
    assert scim.get("/Schemas/urn:nope").status_code == 404
