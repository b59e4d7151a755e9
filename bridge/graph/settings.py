"""Graph settings: plain data, importable without loading msal or msgraph."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
"""Entra ID's global identity platform; national clouds have their own."""
DEFAULT_GRAPH_BASE_URL = "https://graph.microsoft.com/v1.0"
"""Microsoft Graph v1.0 in the global cloud."""
DEFAULT_PAGE_SIZE = 999
"""Objects per page asked of Graph (``Prefer: odata.maxpagesize``); 999 is its maximum."""
DEFAULT_INTERVAL_MINUTES = 40
"""Minutes between reconciliation runs, Entra's own provisioning cycle."""

DEFAULT_GUARD_MAX = 500
"""A reconciliation deprovisioning more objects than this waits for an admin."""

DEFAULT_GUARD_SHARE = 0.2
"""… or more than this share of the directory."""

GRAPH_RESOURCES = frozenset(
    {
        "https://graph.microsoft.com",
        "https://graph.microsoft.us",
        "https://dod-graph.microsoft.us",
        "https://microsoftgraph.chinacloudapi.cn",
        "https://graph.microsoft.de",
    }
)
"""Microsoft Graph hosts of the national clouds (msgraph_core's NationalClouds)."""


@dataclass(frozen=True)
class GraphSettings:
    """How to reach the tenant, and what part of it the bridge provisions.

    The scope is the users and groups assigned to the enterprise app
    (``service_principal_id``), or, without one, the members of ``scope_groups``."""

    tenant_id: str = ""
    client_id: str = ""
    client_secret: str = ""
    cert_path: str = ""  # PEM: private key and certificate
    cert_thumbprint: str = ""  # SHA-1 hex; without it MSAL uses the certificate's SHA-256
    authority_host: str = DEFAULT_AUTHORITY_HOST
    graph_base_url: str = DEFAULT_GRAPH_BASE_URL
    ca_bundle: str = ""  # PEM CA file to trust instead of certifi's (private CAs, tests)
    page_size: int = DEFAULT_PAGE_SIZE
    service_principal_id: str = ""
    scope_groups: tuple[str, ...] = ()
    matching_attribute: str = "userName"
    interval_minutes: int = DEFAULT_INTERVAL_MINUTES
    user_mapping_file: str = ""
    group_mapping_file: str = ""
    guard_max: int = DEFAULT_GUARD_MAX
    guard_share: float = DEFAULT_GUARD_SHARE

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> GraphSettings:
        """Read the ``BRIDGE_GRAPH_*`` variables of ``environ``."""

        def get(name: str, default: str = "") -> str:
            """An environment value, stripped; empty when unset."""
            return environ.get(f"BRIDGE_GRAPH_{name}", "").strip() or default

        groups = get("SCOPE_GROUPS")
        return cls(
            tenant_id=get("TENANT_ID"),
            client_id=get("CLIENT_ID"),
            client_secret=get("CLIENT_SECRET"),
            cert_path=get("CERT_PATH"),
            cert_thumbprint=get("CERT_THUMBPRINT"),
            authority_host=get("AUTHORITY_HOST", DEFAULT_AUTHORITY_HOST).rstrip("/"),
            graph_base_url=get("BASE_URL", DEFAULT_GRAPH_BASE_URL).rstrip("/"),
            ca_bundle=get("CA_BUNDLE"),
            page_size=int(get("PAGE_SIZE", str(DEFAULT_PAGE_SIZE))),
            service_principal_id=get("SERVICE_PRINCIPAL_ID"),
            scope_groups=tuple(g.strip() for g in groups.split(",") if g.strip()),
            matching_attribute=get("MATCHING_ATTRIBUTE", "userName"),
            interval_minutes=int(get("INTERVAL_MINUTES", str(DEFAULT_INTERVAL_MINUTES))),
            user_mapping_file=get("USER_MAPPING"),
            group_mapping_file=get("GROUP_MAPPING"),
            guard_max=int(get("GUARD_MAX", str(DEFAULT_GUARD_MAX))),
            guard_share=float(get("GUARD_SHARE", str(DEFAULT_GUARD_SHARE))),
        )

    @property
    def configured(self) -> bool:
        """Whether there is enough to ask for a token: tenant, client and a credential."""
        return bool(self.tenant_id and self.client_id and (self.client_secret or self.cert_path))

    @property
    def authority(self) -> str:
        """The tenant's authority URL, as MSAL wants it."""
        return f"{self.authority_host.rstrip('/')}/{self.tenant_id}"

    @property
    def scopes(self) -> list[str]:
        """The app-only scope: ``<graph resource>/.default``."""
        parts = urlsplit(self.graph_base_url)
        origin = f"{parts.scheme}://{parts.netloc}"
        resource = origin if origin in GRAPH_RESOURCES else "https://graph.microsoft.com"
        return [f"{resource}/.default"]
