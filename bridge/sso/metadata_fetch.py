"""Federation metadata by URL: fetched over HTTPS, size-capped, refreshed.

Entra publishes one document per enterprise application,
``https://login.microsoftonline.com/{tenant}/federationmetadata/2007-06/federationmetadata.xml?appid={app id}``,
and lists the next signing certificate there before it starts signing with it. An IdP
configured with ``metadata_url`` is read from it when added, again on demand (``idps
refresh``, ``POST /admin/idps/{idp}/refresh``), and again when a sign-in finds its copy
older than ``metadata_refresh_seconds`` (in the background: the sign-in does not wait,
and one process per interval refreshes, under a Redis lock). A refresh that fails keeps
the certificates the IdP had and records the error; certificates only ever come from
here or from an administrator, never from a SAML message.

TLS is checked against ``BRIDGE_GRAPH_CA_BUNDLE`` when set, else certifi's roots, as for
Graph calls; redirects are not followed (Entra answers at the URL itself).

The lock is :meth:`IdpStore.metadata_lock_key`, held for REFRESH_RETRY_SECONDS.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bridge.runtime import clock
from bridge.runtime.tls import ssl_context
from bridge.sso.idps import IdpStore
from bridge.sso.metadata import MAX_METADATA_BYTES, IdpMetadata, MetadataError, read_idp_metadata

log = logging.getLogger(__name__)

FETCH_TIMEOUT = 10.0
"""Seconds for connecting to, and for each read from, the metadata URL."""

DEFAULT_REFRESH_SECONDS = 86_400
"""How old a fetched copy may grow before a sign-in has it refreshed (a day: Entra lists
the next certificate weeks before it signs with it)."""

MIN_REFRESH_SECONDS = 300
REFRESH_RETRY_SECONDS = 300
"""Seconds between two background refreshes of one IdP, whether the first worked or not."""


class MetadataFetchError(MetadataError):
    """The metadata URL could not be read (network, TLS, status, size)."""


def fetch_metadata(url: str, ca_bundle: str = "", max_bytes: int = MAX_METADATA_BYTES) -> bytes:
    """The document at ``url`` (HTTPS only), at most ``max_bytes``; MetadataFetchError else."""
    if not url.lower().startswith("https://"):
        raise MetadataFetchError("the metadata URL must be https")
    try:
        with (
            httpx.Client(
                verify=ssl_context(ca_bundle),
                timeout=FETCH_TIMEOUT,
                trust_env=False,
                follow_redirects=False,
            ) as client,
            client.stream("GET", url, headers={"Accept": "application/xml"}) as response,
        ):
            if response.status_code != 200:
                raise MetadataFetchError(f"the metadata URL answered {response.status_code}")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise MetadataFetchError(f"the metadata is larger than {max_bytes} bytes")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise MetadataFetchError(f"the metadata is larger than {max_bytes} bytes")
    except httpx.HTTPError as exc:
        raise MetadataFetchError(f"the metadata URL cannot be read ({type(exc).__name__})") from exc
    return bytes(body)


def read_metadata_url(url: str, ca_bundle: str = "") -> IdpMetadata:
    """Entity id, sign-on URL and signing certificates from the document at ``url``."""
    return read_idp_metadata(fetch_metadata(url, ca_bundle))


def metadata_fields(found: IdpMetadata) -> dict[str, Any]:
    """The IdP settings a metadata document gives."""
    fields: dict[str, Any] = {
        "entity_id": found.entity_id,
        "sso_url": found.sso_url,
        "certificates": found.certificates,
    }
    if found.wants_signed_requests:
        fields["sign_requests"] = True
    return fields


def refresh(store: IdpStore, idp_id: str, ca_bundle: str = "") -> tuple[dict[str, Any], bool]:
    """Read the IdP's metadata URL again: its stored configuration and whether the entity
    id, sign-on URL or certificates changed. On failure the error is recorded on the IdP
    (``metadata_error``) and MetadataError raised; what it had is kept."""
    config = store.config(idp_id)
    url = config.get("metadata_url")
    if not url:
        raise MetadataError("the identity provider has no metadata_url")
    try:
        fields = metadata_fields(read_metadata_url(url, ca_bundle))
    except MetadataError as exc:
        store.update(idp_id, {"metadata_error": str(exc), "metadata_checked": clock.now()})
        raise
    changed = any(config.get(k) != v for k, v in fields.items())
    now = clock.now()
    stamps = {"metadata_fetched": now, "metadata_checked": now, "metadata_error": None}
    updated = store.update(idp_id, {**fields, **stamps})
    if changed:
        log.info(
            "federation metadata of idp=%s changed: certificates now %d",
            config["name"],
            len(fields["certificates"]),
        )
    return updated, changed


def is_due(config: dict[str, Any], now: datetime | None = None) -> bool:
    """Whether the IdP's copy of its metadata is older than its refresh interval."""
    if not config.get("metadata_url"):
        return False
    fetched = config.get("metadata_fetched")
    if not fetched:
        return True
    every = int(config.get("metadata_refresh_seconds") or DEFAULT_REFRESH_SECONDS)
    then = datetime.fromisoformat(str(fetched).replace("Z", "+00:00"))
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return (now or datetime.now(UTC)) - then >= timedelta(seconds=every)


def refresh_in_background(store: IdpStore, config: dict[str, Any], ca_bundle: str = "") -> bool:
    """Start a refresh of a due IdP in a thread, if no process started one lately;
    whether one was started. The sign-in that noticed goes on with what the IdP has."""
    if not is_due(config):
        return False
    lock = store.metadata_lock_key(config["id"])
    if not store.redis.set(lock, "1", nx=True, ex=REFRESH_RETRY_SECONDS):
        return False
    thread = threading.Thread(
        target=_refresh_quietly, args=(store, config["id"], ca_bundle), daemon=True
    )
    thread.start()
    return True


def _refresh_quietly(store: IdpStore, idp_id: str, ca_bundle: str) -> None:
    try:
        refresh(store, idp_id, ca_bundle)
    except Exception as exc:  # noqa: BLE001 - a background refresh only logs
        log.warning("federation metadata refresh failed: %s", exc)
