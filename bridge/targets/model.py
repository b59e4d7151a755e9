"""Targets: downstream applications and how the bridge reaches and scopes them."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, get_args

from bridge.directory.stored import Kind
from bridge.observability.masking import mask_url
from bridge.scim.filter import Filter, parse_filter
from bridge.scim.resource_types import ResourceType
from bridge.targets.mapping import Mapping, parse_mapping

SECRET_FIELDS = (("auth", "token"), ("auth", "client_secret"), (None, "signing_secret"))
"""Where secrets sit in a target's configuration: encrypted at rest, never returned."""

TargetKind = Literal["scim", "webhook"]
"""How the bridge reaches a target: SCIM 2.0 requests, or signed webhook events."""

TARGET_KINDS: tuple[TargetKind, ...] = get_args(TargetKind)

ScopeType = Literal["all", "groups", "filter"]
"""Which users a target receives: all, members of chosen groups, or those a filter matches."""

SCOPE_TYPES: tuple[ScopeType, ...] = get_args(ScopeType)

DeprovisionMode = Literal["disable", "disable_and_remove_from_groups", "delete"]

DEPROVISION_MODES: tuple[DeprovisionMode, ...] = get_args(DeprovisionMode)
"""What a target does with a user who is disabled, deleted or leaves its scope: set
``active: false`` there; the same and take the user out of the target's groups; or delete
the user there. A deleted user is always deleted."""

KEEPS_INACTIVE_MEMBERS: frozenset[DeprovisionMode] = frozenset({"disable"})
"""Deprovision modes under which a disabled user stays in the target's groups."""


@dataclass(frozen=True)
class Target:
    """One target, as the worker uses it: secrets decrypted, mappings parsed."""

    id: str
    name: str
    kind: TargetKind
    url: str
    auth: dict[str, Any]
    resources: tuple[str, ...]
    user_mapping: Mapping
    group_mapping: Mapping
    scope: dict[str, Any]
    deprovision: DeprovisionMode
    enabled: bool
    shadow: bool
    deletion_guard: dict[str, int]
    concurrency: int | None = None
    """Delivery jobs of this target that may be queued or running at once (None: default)."""
    signing_secret: str | None = None
    config: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def receives(self, kind: Kind) -> bool:
        """Whether this target gets ``kind`` ("user" or "group") resources."""
        return f"{kind}s" in self.resources

    @cached_property
    def scope_filter(self) -> Filter | None:
        """The scope's SCIM filter, parsed once per configuration."""
        return parse_filter(self.scope["filter"]) if self.scope_type == "filter" else None

    @property
    def scope_type(self) -> ScopeType:
        """Which users the target receives (see ScopeType)."""
        scope: ScopeType = self.scope["type"]
        return scope

    @property
    def scope_groups(self) -> frozenset[str]:
        """The groups whose members a ``groups`` scope takes (empty for other scopes)."""
        return (
            frozenset(self.scope.get("groups") or ())
            if self.scope_type == "groups"
            else frozenset()
        )

    @classmethod
    def from_config(cls, config: dict[str, Any], resource_types: dict[str, ResourceType]) -> Target:
        """Build from a stored configuration whose secrets are already decrypted."""
        return cls(
            id=config["id"],
            name=config["name"],
            kind=config["kind"],
            url=config["url"].rstrip("/"),
            auth=dict(config.get("auth") or {"type": "none"}),
            resources=tuple(config.get("resources") or ("users", "groups")),
            user_mapping=parse_mapping(config.get("user_mapping"), resource_types["User"]),
            group_mapping=parse_mapping(config.get("group_mapping"), resource_types["Group"]),
            scope=dict(config.get("scope") or {"type": "all"}),
            deprovision=config.get("deprovision", "disable"),
            enabled=bool(config.get("enabled", True)),
            shadow=bool(config.get("shadow", False)),
            deletion_guard=dict(
                config.get("deletion_guard") or {"max": 100, "window_seconds": 3600}
            ),
            concurrency=config.get("concurrency"),
            signing_secret=config.get("signing_secret"),
            config=config,
        )


def public_view(config: dict[str, Any]) -> dict[str, Any]:
    """A stored configuration without its secrets, for the API and the CLI; credentials
    in its URLs (``?api_key=…``, ``https://user:pw@…``) are masked too."""
    out = {k: v for k, v in config.items() if k != "signing_secret"}
    if "url" in out:
        out["url"] = mask_url(out["url"])
    if "auth" in out:
        out["auth"] = {k: v for k, v in out["auth"].items() if k not in ("token", "client_secret")}
        if "token_url" in out["auth"]:
            out["auth"]["token_url"] = mask_url(out["auth"]["token_url"])
    return out


def merged(old: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``old`` with partial ``changes``; secrets the changes leave out are kept, as long as
    the auth type stays the same."""
    config = {**old, **{k: v for k, v in changes.items() if k != "auth"}}
    if "auth" in changes:
        auth = dict(changes["auth"])
        old_auth = old.get("auth") or {}
        if auth.get("type") == old_auth.get("type"):
            for secret in ("token", "client_secret"):
                if secret not in auth and secret in old_auth:
                    auth[secret] = old_auth[secret]
        config["auth"] = auth
    return config
