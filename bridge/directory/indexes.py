"""The directory's indexes: which attributes are indexed, and how their values are keyed.

Unique indexes (``{p}:idx:{kind}:{attr}``, a hash value -> id) hold userName, displayName
and externalId; the multi-valued index holds users' e-mail addresses (a set per value).
userName, displayName and e-mail values are case-insensitive (RFC 7643 §4.1.1 and §4.1.2:
``caseExact`` false), so they are keyed case-folded; externalId is case-exact. This module
is the one place that rule is written: writes (:func:`index_values`) and lookups
(:func:`fold`) both use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

UNIQUE: dict[str, tuple[str, ...]] = {
    "user": ("userName", "externalId"),
    "group": ("displayName", "externalId"),
}
"""Attributes with a unique index, per kind."""

MULTI: dict[str, tuple[str, ...]] = {"user": ("email",), "group": ()}
"""Attributes with a multi-valued index, per kind."""

FOLDED = frozenset({"userName", "displayName", "email"})
"""Indexed attributes whose values are compared without regard to case."""


@dataclass(frozen=True)
class IndexValues:
    """The index entries a document owns: unique ones and multi-valued ones."""

    unique: dict[str, str | None]
    multi: dict[str, list[str]]


def fold(attr: str, value: str) -> str:
    """``value`` as the index of ``attr`` keys it."""
    return value.casefold() if attr in FOLDED else value


def index_values(kind: str, doc: dict[str, Any]) -> IndexValues:
    """The index entries of a stored document: unique attributes and (users) e-mail values."""
    external = doc.get("externalId")
    if kind == "user":
        emails = sorted(
            {
                fold("email", e["value"])
                for e in doc.get("emails", [])
                if isinstance(e, dict) and isinstance(e.get("value"), str)
            }
        )
        return IndexValues(
            unique={"userName": fold("userName", doc["userName"]), "externalId": external},
            multi={"email": emails},
        )
    return IndexValues(
        unique={"displayName": fold("displayName", doc["displayName"]), "externalId": external},
        multi={},
    )
