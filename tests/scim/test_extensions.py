"""Extension schemas declared in configuration (Entra custom attributes) are accepted,
stored, returned, filterable and described in /Schemas."""

from __future__ import annotations

import dataclasses
import json

import pytest

from app import create_app
from tests.conftest import ScimClient
from tests.factories import USER_SCHEMA, entra_user

CUSTOM = "urn:ietf:params:scim:schemas:extension:contoso:2.0:User"
SCHEMA = {
    "id": CUSTOM,
    "name": "ContosoUser",
    "description": "Contoso custom attributes",
    "attributes": [
        {"name": "badgeNumber", "type": "string", "multiValued": False, "required": False, "caseExact": False,
         "mutability": "readWrite", "returned": "default", "uniqueness": "none"},
        {"name": "clearance", "type": "integer", "multiValued": False, "required": False,
         "mutability": "readWrite", "returned": "default", "uniqueness": "none"},
    ],
}  # fmt: skip


@pytest.fixture
def custom_scim(settings, redis_client, tmp_path):
    path = tmp_path / "contoso.json"
    path.write_text(json.dumps(SCHEMA))
    env = {"REDIS_URL": settings.redis_url, "BRIDGE_EXTENSION_SCHEMAS": str(path)}
    from bridge.runtime.config import Settings

    app = create_app(
        dataclasses.replace(Settings.from_env(env), public_base_url="https://bridge.test")
    )
    _, secret = app.extensions["bridge"].tokens.create("t")
    return ScimClient(app.test_client(), secret)


def test_custom_extension_is_stored_and_returned(custom_scim):
    body = entra_user(
        schemas=[USER_SCHEMA, CUSTOM], **{CUSTOM: {"badgeNumber": "B-17", "clearance": 3}}
    )
    user = custom_scim.post("/Users", json=body).json
    assert user[CUSTOM] == {"badgeNumber": "B-17", "clearance": 3}
    assert CUSTOM in user["schemas"]
    assert custom_scim.get(f"/Users/{user['id']}").json[CUSTOM]["badgeNumber"] == "B-17"


def test_custom_extension_attribute_is_filterable(custom_scim):
    custom_scim.post("/Users", json=entra_user(**{CUSTOM: {"badgeNumber": "B-17"}}))
    body = custom_scim.get(
        "/Users", query_string={"filter": f'{CUSTOM}:badgeNumber eq "b-17"'}
    ).json
    assert body["totalResults"] == 1


def test_custom_extension_is_patchable_by_entra_pathless_replace(custom_scim):
    user = custom_scim.post("/Users", json=entra_user()).json
    response = custom_scim.patch(
        f"/Users/{user['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Add", "value": {f"{CUSTOM}:badgeNumber": "B-99"}}],
        },
    )
    assert response.json[CUSTOM] == {"badgeNumber": "B-99"}


def test_custom_extension_is_described_in_schemas_and_resource_types(custom_scim):
    assert custom_scim.get(f"/Schemas/{CUSTOM}").json["name"] == "ContosoUser"
    extensions = custom_scim.get("/ResourceTypes/User").json["schemaExtensions"]
    assert {"schema": CUSTOM, "required": False} in extensions


def test_custom_extension_value_of_wrong_type_is_400(custom_scim):
    body = entra_user(**{CUSTOM: {"clearance": "high"}})
    response = custom_scim.post("/Users", json=body)
    assert response.status_code == 400
    assert response.json["scimType"] == "invalidValue"


def test_undeclared_extension_is_400(scim):
    body = entra_user(**{CUSTOM: {"badgeNumber": "B-17"}})
    response = scim.post("/Users", json=body)
    assert response.status_code == 400
    assert response.json["scimType"] == "invalidValue"
