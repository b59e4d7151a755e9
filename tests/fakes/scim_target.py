"""A third-party SCIM 2.0 service provider as an outbound-SCIM target: scim2-server.

scim2-server keeps users and groups in memory and does what the RFCs ask, no more: it
does not drop a deleted user from the groups that list it, as many real apps do not, so
the bridge must remove members itself. It is served behind fault knobs and requires a
bearer token; :meth:`ScimTarget.read` reads its users and groups back over SCIM.
"""

from __future__ import annotations

import secrets

import httpx
from scim2_models import ScimProvider
from scim2_server.memory import InMemoryStorage
from scim2_server.service import ScimService
from scim2_server.testserver.application import BEARER_TOKEN_SCHEME, BearerTokenApplication
from scim2_server.utils import (
    load_default_resource_types,
    load_default_schemas,
    load_default_service_provider_config,
)

from tests.fakes.faulty import INSPECT_HEADER, FaultMiddleware, Knobs, Server

PAGE = 500
"""Resources per page when reading the target back."""


def scim2_application(token: str) -> BearerTokenApplication:
    """scim2-server's WSGI app over a fresh in-memory storage, with RFC 7643's schemas."""
    config = load_default_service_provider_config()
    config.authentication_schemes = [*(config.authentication_schemes or []), BEARER_TOKEN_SCHEME]
    provider = ScimProvider.from_discovery(
        load_default_schemas().values(), load_default_resource_types().values(), config=config
    )
    service = ScimService(provider, secret=secrets.token_urlsafe(16))
    return BearerTokenApplication(InMemoryStorage(), provider, service, bearer_tokens=[token])


class ScimTarget:
    """scim2-server on 127.0.0.1 behind fault knobs; ``url`` is its SCIM base (``/v2``)."""

    def __init__(self) -> None:
        self.token = secrets.token_urlsafe(24)
        self.knobs = Knobs()
        self.server = Server(FaultMiddleware(scim2_application(self.token), self.knobs))

    @property
    def url(self) -> str:
        return self.server.url + "/v2"

    def start(self) -> ScimTarget:
        self.server.up()
        return self

    def stop(self) -> None:
        self.knobs.release()
        self.server.down()

    def read(self, endpoint: str) -> list[dict]:
        """Every resource of ``/Users`` or ``/Groups``, read past the fault knobs."""
        headers = {"Authorization": f"Bearer {self.token}", INSPECT_HEADER: "1"}
        found: list[dict] = []
        with httpx.Client(base_url=self.url, headers=headers, timeout=10) as http:
            while True:
                params = {"startIndex": len(found) + 1, "count": PAGE}
                response = http.get(endpoint, params=params)
                response.raise_for_status()
                page = response.json().get("Resources") or []
                found.extend(page)
                if len(page) < PAGE:
                    return found
