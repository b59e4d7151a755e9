"""Marshmallow schemas for SCIM request envelopes (query parameters, /.search bodies)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate


class ListQuerySchema(Schema):
    """RFC 7644 §3.4.2 query parameters (and the §3.4.3 /.search body)."""

    class Meta:
        """Unknown parameters are ignored rather than refused."""

        unknown = EXCLUDE

    filter = fields.String(load_default=None)
    startIndex = fields.Integer(load_default=1)
    count = fields.Integer(load_default=None)
    sortBy = fields.String(load_default=None)
    sortOrder = fields.String(
        load_default="ascending",
        validate=validate.OneOf(["ascending", "descending"]),
    )
    attributes = fields.String(load_default=None)
    excludedAttributes = fields.String(load_default=None)

    @pre_load
    def _lists_and_case(self, data: Mapping[str, Any], **_: Any) -> dict[str, Any]:
        """/.search sends attribute lists as JSON arrays; sortOrder is case-insensitive."""
        data = dict(data)
        for key in ("attributes", "excludedAttributes"):
            if isinstance(data.get(key), list):
                data[key] = ",".join(str(v) for v in data[key])
        if isinstance(data.get("sortOrder"), str):
            data["sortOrder"] = data["sortOrder"].lower()
        return data


LIST_QUERY = ListQuerySchema()

_LOADED_DEFAULTS: dict[str, Any] = {
    name: field.load_default for name, field in LIST_QUERY.fields.items()
}
"""What :data:`LIST_QUERY` loads from no parameters at all."""


def load_list_query(params: Mapping[str, Any]) -> dict[str, Any]:
    """``LIST_QUERY.load(params)``; what Entra sends (a filter alone, or nothing) is loaded
    without marshmallow's machinery, to the same result: a text filter is kept as it is and
    every other parameter takes its default."""
    if params.keys() <= {"filter"} and isinstance(params.get("filter", ""), str):
        return {**_LOADED_DEFAULTS, **params}
    loaded: dict[str, Any] = LIST_QUERY.load(params)
    return loaded


__all__ = ["LIST_QUERY", "ListQuerySchema", "ValidationError", "load_list_query"]
