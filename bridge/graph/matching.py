"""Which directory record stands for a Graph object: its link, else the record whose
matching attribute (``userName`` or ``externalId``; a group's ``displayName``) has the
object's value, as Entra's provisioning matches on first contact."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from bridge.directory.records import Directory
from bridge.directory.stored import Record, as_kind
from bridge.graph.links import Links
from bridge.graph.report import Progress
from bridge.graph.translate import MANAGER, GraphObject, ResourceMapping

if TYPE_CHECKING:
    from bridge.graph.source import GraphSource

Prepared = list[tuple[GraphObject, str | None, Record | None]]
"""Graph objects with the bridge id and the record standing for each (None: none yet)."""


class Matcher:
    """Finds records for Graph objects: by link, then by the matching attribute (one index
    lookup per object, all in one round trip).

    ``pretended(bridge id)`` tells the ids a dry run made up for what it would create."""

    def __init__(
        self,
        directory: Directory,
        links: Links,
        mappings: dict[str, ResourceMapping],
        matching_attribute: str,
        progress: Progress,
        pretended: Callable[[str], bool],
    ) -> None:
        self.directory = directory
        self.links = links
        self.mappings = mappings
        self.attributes = {"user": matching_attribute, "group": "displayName"}
        self.progress = progress
        self.pretended = pretended

    def match(self, kind: str, objects: list[GraphObject]) -> dict[str, str]:
        """Graph id -> bridge id, for the objects that have a record (or a link)."""
        found = self.links.bridge_ids(kind, [o["id"] for o in objects])
        keyed: list[tuple[str, str]] = []
        for obj in objects:
            value = None if obj["id"] in found else self._key(kind, obj)
            if value:
                keyed.append((obj["id"], value))
        if not keyed:
            return found
        ids = self.directory.lookup(
            as_kind(kind), self.attributes[kind], [value for _, value in keyed]
        )
        for (graph_id, _), rid in zip(keyed, ids, strict=True):
            if rid:
                found[graph_id] = rid
        return found

    def records(self, kind: str, found: dict[str, str]) -> dict[str, Record]:
        """Graph id -> the record its bridge id names, for those that exist."""
        ids = list(set(found.values()))
        by_id = {
            r.id: r for r in self.directory.get_many(as_kind(kind), ids, members=kind == "group")
        }
        return {g: by_id[rid] for g, rid in found.items() if rid in by_id}

    async def prepare(self, source: GraphSource, kind: str, objects: list[GraphObject]) -> Prepared:
        """Each object with the bridge id and record standing for it. One that has no record
        and lacks what creating it needs (a delta round may carry only what changed) is read
        in full from Graph first, then matched again; one Graph no longer has is an error."""
        mapping = self.mappings[kind]
        found = self.match(kind, objects)
        records = self.records(kind, found)
        ready: list[GraphObject] = []
        fetched: list[GraphObject] = []
        for obj in objects:
            graph_id = obj["id"]
            if graph_id in records or self.pretended(found.get(graph_id, "")):
                ready.append(obj)
            elif not mapping.partial(obj) and not mapping.unmapped_required(mapping.values(obj)):
                ready.append(obj)
            else:
                fresh = await self._read(source, kind, graph_id)
                if fresh is None:
                    self.progress.error(f"NotFound: {kind} {graph_id}: Graph no longer has it")
                else:
                    fetched.append({**obj, **fresh})
        if fetched:
            more = self.match(kind, fetched)
            found.update(more)
            records.update(self.records(kind, more))
        return [(o, found.get(o["id"]), records.get(o["id"])) for o in ready + fetched]

    async def _read(self, source: GraphSource, kind: str, graph_id: str) -> GraphObject | None:
        """The whole object, as a single read returns it."""
        if kind == "user":
            return await source.user(graph_id, self.mappings["user"].select(MANAGER))
        return await source.group(graph_id, self.mappings["group"].select())

    def _key(self, kind: str, obj: GraphObject) -> str | None:
        """The object's value of the matching attribute."""
        attr = self.attributes[kind]
        prop = self.mappings[kind].prop(attr)
        value = obj.get(prop) if prop else None
        if not isinstance(value, str) or not value:
            return None
        return value
