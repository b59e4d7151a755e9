"""The sample resources and helpers of the mapping tests."""

from __future__ import annotations

from bridge.scim.resource_types import build_resource_types
from bridge.targets.mapping import apply_mapping, parse_mapping
from tests.factories import ENTERPRISE, entra_user

TYPES = build_resource_types()
USERS = TYPES["User"]
GROUPS = TYPES["Group"]
MANAGER_ID = "26118915-6090-4610-87e4-49d8ca9f808d"


def user(**overrides) -> dict:
    """An Entra user as the bridge stores it, with the attributes apps usually want."""
    body = entra_user(
        userName="adele.vance@contoso.com",
        displayName="Adele Vance",
        name={"formatted": "Adele Vance", "familyName": "Vance", "givenName": "Adele"},
        emails=[
            {"type": "home", "value": "adele@example.org"},
            {"primary": True, "type": "work", "value": "adele.vance@contoso.com"},
        ],
        phoneNumbers=[
            {"type": "work", "value": "+1 425 555 0109"},
            {"type": "mobile", "value": "+1 425 555 0110"},
        ],
        title="Retail Manager",
        **{ENTERPRISE: {"department": "Retail", "manager": {"value": MANAGER_ID}}},
    )
    body["id"] = "8f3c2a1e-5b7d-4e9a-9c4f-2d6b1a0e7f35"
    body.update(overrides)
    return body


def mapped(spec: dict, resource: dict | None = None, rtype=USERS) -> dict:
    """Parse ``spec`` and apply it to ``resource`` (the sample user by default)."""
    return apply_mapping(
        parse_mapping(spec, rtype), user() if resource is None else resource, rtype
    )
