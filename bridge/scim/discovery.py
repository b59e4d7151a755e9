"""Service provider discovery (RFC 7644 §4, RFC 7643 §5): what this bridge supports."""

from __future__ import annotations

from typing import Any

from bridge.runtime.config import Settings
from bridge.runtime.services import Services
from bridge.scim import urns
from bridge.scim.attributes import Schema


def service_provider_config(settings: Settings, base_url: str) -> dict[str, Any]:
    """RFC 7643 §5: true to what the endpoint implements."""
    return {
        "schemas": [urns.SERVICE_PROVIDER_CONFIG],
        "patch": {"supported": True},
        "bulk": {
            "supported": True,
            "maxOperations": settings.bulk_max_operations,
            "maxPayloadSize": settings.max_body_bytes,
        },
        "filter": {"supported": True, "maxResults": settings.max_results},
        "changePassword": {"supported": False},
        "sort": {"supported": True},
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "Authentication with a bearer token issued by the bridge's CLI.",
                "specUri": "https://www.rfc-editor.org/info/rfc6750",
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base_url}/ServiceProviderConfig",
        },
    }


def all_schemas(bridge: Services) -> list[Schema]:
    """Every schema some resource type uses, each once, core schemas first."""
    seen: dict[str, Schema] = {}
    for rtype in bridge.resource_types.values():
        seen.setdefault(rtype.schema.id, rtype.schema)
        for schema, _ in rtype.extensions:
            seen.setdefault(schema.id, schema)
    return list(seen.values())
