"""Secrets out of whatever is logged, stored for the audit trail, or shown to an admin.

Tokens the bridge issues (``scim_…``, ``adm_…``), webhook signing secrets (``whsec_…``),
``Bearer`` credentials, passwords in URLs (``https://user:pw@host``) and credentials in
query strings (``?api_key=…``, ``token=``, ``secret=``, ``password=`` …) are replaced
by ``***``; in JSON bodies, the values of secret-named attributes (``password`` …).
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"

SECRET_PARAMS = (
    "api_key", "apikey", "api-key", "key", "token", "access_token", "refresh_token",
    "id_token", "secret", "client_secret", "password", "passwd", "pwd", "sig", "signature",
    "code", "auth",
)  # fmt: skip
"""Query parameters whose values are credentials (matched case-insensitively, also as a
suffix: ``x_api_key``, ``sessionToken``)."""

_NAMES = "|".join(re.escape(p) for p in sorted(SECRET_PARAMS, key=len, reverse=True))
_QUERY = re.compile(
    rf"(?P<name>[?&;](?:[A-Za-z0-9_.-]*?)(?:{_NAMES}))=(?P<value>[^&;#\s'\"<>]*)",
    re.IGNORECASE,
)
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@'\"]+):[^@\s/'\"]+@")
_BEARER = re.compile(r"(?P<scheme>\b(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_TOKENS = re.compile(r"\b(?P<prefix>scim_|adm_|whsec_)[A-Za-z0-9_+/=-]{8,}")

SECRET_FIELDS = frozenset(
    {"password", "token", "client_secret", "signing_secret", "secret", "bearer_token"}
)
"""JSON attributes whose values are never stored or shown (case-insensitively)."""


_MAYBE = re.compile(r"[?&;]|://|bearer|basic|scim_|adm_|whsec_", re.IGNORECASE)
"""What every credential pattern needs: text without any of it is returned at once (one
search, instead of four substitutions, for the common case)."""


def mask_text(text: str) -> str:
    """``text`` with every credential it carries replaced by ``***``."""
    if not text or _MAYBE.search(text) is None:
        return text
    text = _QUERY.sub(lambda m: f"{m.group('name')}={MASK}" if m.group("value") else m[0], text)
    text = _USERINFO.sub(lambda m: f"{m.group('scheme')}:{MASK}@", text)
    text = _BEARER.sub(lambda m: f"{m.group('scheme')}{MASK}", text)
    return _TOKENS.sub(lambda m: f"{m.group('prefix')}{MASK}", text)


def mask_url(url: str | None) -> str | None:
    """A URL fit to show: its password and query-string credentials masked."""
    return mask_text(url) if url else url


_SECRET_WORDS = ("password", "token", "secret")
"""A word every name in SECRET_FIELDS contains."""


def may_name_secret(text: str) -> bool:
    """Whether JSON ``text`` may hold a secret attribute (or a PATCH path naming one), as
    :func:`mask_body` finds them: if it names none of SECRET_FIELDS' words in any case,
    ``mask_body`` would leave its value as it is, so a body can be stored without it."""
    lowered = text.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def mask_body(value: Any, *, strings: bool = True) -> Any:
    """A JSON value with secret attributes' values masked, including a SCIM PATCH
    operation that sets one (``{"path": "password", "value": …}``); with ``strings``,
    credentials inside string values (URLs, tokens) too."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(key, str) and key.lower() in SECRET_FIELDS:
                out[key] = MASK
            else:
                out[key] = mask_body(item, strings=strings)
        path = out.get("path")
        if isinstance(path, str) and path.lower().rsplit(":", 1)[-1] in SECRET_FIELDS:
            if "value" in out:
                out["value"] = MASK
        return out
    if isinstance(value, list):
        return [mask_body(v, strings=strings) for v in value]
    if strings and isinstance(value, str):
        return mask_text(value)
    return value
