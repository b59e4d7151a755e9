"""Microsoft Graph access: settings, an MSAL app per process, a Graph client per event loop.

Errors raised here and in :mod:`bridge.graph.source` are those of
:mod:`bridge.graph.errors` (re-exported here).

An RQ job runs each ``async def`` in a fresh ``asyncio.run()`` loop, and an httpx client
cannot outlive its loop, so :func:`graph_client` builds a new client for each loop. What is
expensive or stateful is kept per process instead: the MSAL app (its token cache saves a
token request per job) and the ``ssl.SSLContext`` (loading CA certificates costs ~50 ms).
"""

from __future__ import annotations

import importlib
import threading
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import msal
import requests
from azure.core.credentials import AccessToken
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.middleware.options import RetryHandlerOption
from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_request_adapter import options as graph_middleware_options
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory

from bridge.graph.errors import (
    DeltaExpired,
    GraphAuthError,
    GraphError,
    GraphNotFound,
    GraphThrottled,
)
from bridge.graph.settings import GraphSettings
from bridge.runtime.tls import ssl_context

__all__ = [
    "DeltaExpired",
    "GraphAuthError",
    "GraphError",
    "GraphNotFound",
    "GraphSettings",
    "GraphThrottled",
    "MsalCredential",
    "graph_client",
    "http_client",
    "msal_app",
]

# Every msgraph request-builder module (and one kiota module) warns about its own
# deprecated classes while it is being imported, and the SDK imports them lazily, on first
# use: import the ones the bridge uses now, once, with those warnings silenced.
_SDK_MODULES = (
    "kiota_abstractions.default_query_parameters",
    "msgraph.generated.users.users_request_builder",
    "msgraph.generated.users.delta.delta_request_builder",
    "msgraph.generated.users.item.user_item_request_builder",
    "msgraph.generated.groups.groups_request_builder",
    "msgraph.generated.groups.delta.delta_request_builder",
    "msgraph.generated.groups.item.group_item_request_builder",
    "msgraph.generated.groups.item.members.members_request_builder",
    "msgraph.generated.groups.item.members.graph_user.graph_user_request_builder",
    "msgraph.generated.service_principals.service_principals_request_builder",
    "msgraph.generated.service_principals.item.service_principal_item_request_builder",
    "msgraph.generated.service_principals.item.app_role_assigned_to.app_role_assigned_to_request_builder",
)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    for _module in _SDK_MODULES:
        importlib.import_module(_module)


MAX_RETRIES = 4
"""Retries of a throttled (429) or unavailable (503/504) request; kiota's RetryHandler
waits ``Retry-After`` between them. After the last one the request fails with
:class:`GraphThrottled`."""

HTTP_TIMEOUT = httpx.Timeout(100.0, connect=30.0)
"""Graph request timeouts in seconds (kiota's defaults): a delta page can be slow."""

TOKEN_TIMEOUT = 30
"""Seconds MSAL waits for the identity platform."""


_apps: dict[tuple[str, ...], msal.ConfidentialClientApplication] = {}
_apps_lock = threading.Lock()


def msal_app(settings: GraphSettings) -> msal.ConfidentialClientApplication:
    """This process's MSAL app for ``settings``, made on first use (it fetches the
    authority's OpenID configuration); its token cache lives as long as the process."""
    s = settings
    key = (s.authority, s.client_id, s.client_secret, s.cert_path, s.cert_thumbprint, s.ca_bundle)
    with _apps_lock:
        app = _apps.get(key)
        if app is None:
            app = _apps[key] = _new_msal_app(settings)
        return app


def _new_msal_app(settings: GraphSettings) -> msal.ConfidentialClientApplication:
    # requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override ``verify`` unless trust_env
    # is off, and MSAL otherwise never sees our CA.
    session = requests.Session()
    session.trust_env = False
    session.verify = settings.ca_bundle or True
    microsoft = urlsplit(settings.authority_host).hostname in WELL_KNOWN_AUTHORITY_HOSTS
    try:
        return msal.ConfidentialClientApplication(
            settings.client_id,
            client_credential=_credential(settings),
            authority=settings.authority,
            http_client=session,
            timeout=TOKEN_TIMEOUT,
            # Instance discovery asks login.microsoftonline.com about the authority host,
            # which knows only Microsoft's clouds.
            instance_discovery=None if microsoft else False,
        )
    except requests.RequestException as exc:
        raise GraphError(f"identity platform request failed: {exc}") from exc
    except (ValueError, OSError) as exc:
        raise GraphAuthError(f"cannot set up the MSAL client: {exc}") from exc


def _credential(settings: GraphSettings) -> str | dict[str, str]:
    """A client secret, or MSAL's certificate dict from the PEM at ``cert_path``."""
    if not settings.cert_path:
        return settings.client_secret
    pem = Path(settings.cert_path).read_text()
    start = pem.find("-----BEGIN CERTIFICATE-----")
    credential = {"private_key": pem[:start] if start >= 0 else pem}
    if start >= 0:
        credential["public_certificate"] = pem[start:]
    if settings.cert_thumbprint:
        credential["thumbprint"] = settings.cert_thumbprint
    return credential


class MsalCredential:
    """An azure-core ``TokenCredential`` over :func:`msal_app`, for kiota. kiota sends no
    ``Authorization`` header unless it gets an ``AccessToken`` back. It is synchronous:
    a cache hit costs microseconds; a token request (about once an hour per process)
    blocks the event loop for its duration."""

    def __init__(self, settings: GraphSettings) -> None:
        self.settings = settings

    def get_token(self, *scopes: str, claims: str | None = None, **_: Any) -> AccessToken:
        """An app-only token for ``scopes``, from MSAL's cache while it is valid."""
        try:
            result = msal_app(self.settings).acquire_token_for_client(
                list(scopes), claims_challenge=claims
            )
        except requests.RequestException as exc:
            raise GraphError(f"identity platform request failed: {exc}") from exc
        if "access_token" not in result:
            error = result.get("error", "no_token")
            raise GraphAuthError(f"{error}: {result.get('error_description', '')}".strip())
        return AccessToken(result["access_token"], int(time.time()) + int(result["expires_in"]))


def http_client(settings: GraphSettings) -> httpx.AsyncClient:
    """A bare httpx client for one event loop; :func:`graph_client` adds Graph's middleware.
    Environment proxies and CA variables are ignored, as they are for MSAL."""
    return httpx.AsyncClient(
        verify=ssl_context(settings.ca_bundle), timeout=HTTP_TIMEOUT, trust_env=False
    )


def graph_client(
    settings: GraphSettings, http: httpx.AsyncClient | None = None
) -> GraphServiceClient:
    """A Graph client bound to the running event loop. Pass ``http`` (from
    :func:`http_client`) to be able to ``aclose()`` it when the loop's work is done."""
    parts = urlsplit(settings.graph_base_url)
    if parts.scheme != "https" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        # kiota would refuse each request ("Only https is supported"); say so up front.
        raise GraphError(f"graph_base_url must be https: {settings.graph_base_url!r}")
    options = dict(graph_middleware_options)
    options[RetryHandlerOption.get_key()] = RetryHandlerOption(max_retries=MAX_RETRIES)
    client = GraphClientFactory.create_with_default_middleware(
        client=http or http_client(settings), options=options
    )
    auth = AzureIdentityAuthenticationProvider(
        MsalCredential(settings),
        scopes=settings.scopes,
        allowed_hosts=[parts.hostname or ""],
        is_cae_enabled=False,
    )
    adapter = GraphRequestAdapter(auth, client=client)
    adapter.base_url = settings.graph_base_url
    return GraphServiceClient(request_adapter=adapter)
