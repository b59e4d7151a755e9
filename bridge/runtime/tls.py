"""The client TLS context of outbound HTTPS calls to Entra (Graph, federation metadata, OIDC).

Building an ``ssl.SSLContext`` loads the CA certificates (about 50 ms), so each bundle's is
built once per process. This module is kept apart from the Graph client so that the web
tier, which only fetches metadata, does not import Microsoft Graph's SDK.
"""

from __future__ import annotations

import ssl
from functools import lru_cache

import certifi


@lru_cache(maxsize=8)
def ssl_context(ca_bundle: str = "") -> ssl.SSLContext:
    """A client ``SSLContext`` trusting ``ca_bundle`` (else certifi), built once per process."""
    return ssl.create_default_context(cafile=ca_bundle or certifi.where())
