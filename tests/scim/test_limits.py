"""One test per input limit: the limit itself is accepted, one past it is refused clearly."""

from __future__ import annotations

import pytest

from bridge.directory.ids import is_id, new_id
from bridge.scim.errors import InvalidFilter
from bridge.scim.filter import MAX_FILTER_DEPTH, MAX_FILTER_LENGTH, MAX_FILTER_TERMS, parse_filter
from bridge.scim.filter_eval import check_filter, matches
from bridge.scim.http import MAX_VERSION
from bridge.scim.patch import MAX_PATCH_OPERATIONS
from bridge.scim.query import MAX_START_INDEX
from bridge.scim.resource_types import build_resource_types
from bridge.web.body import MAX_JSON_DEPTH
from tests.factories import entra_group, entra_user, patch

USER = build_resource_types()["User"]


def nested(levels: int) -> str:
    return "(" * levels + 'userName eq "x"' + ")" * levels


def chain(terms: int, joiner: str = "or") -> str:
    return f" {joiner} ".join([f'userName eq "u{i}"' for i in range(terms)])


def test_filter_of_max_length_parses_and_one_character_more_is_invalid_filter() -> None:
    text = 'userName eq "' + "x" * (MAX_FILTER_LENGTH - 14) + '"'
    assert len(text) == MAX_FILTER_LENGTH
    parse_filter(text)
    with pytest.raises(InvalidFilter, match="longer than"):
        parse_filter(text + " ")


def test_filter_nested_max_depth_parses_and_one_level_more_is_invalid_filter() -> None:
    parse_filter(nested(MAX_FILTER_DEPTH))
    with pytest.raises(InvalidFilter, match="deeper than"):
        parse_filter(nested(MAX_FILTER_DEPTH + 1))


def test_not_and_value_filter_brackets_count_as_nesting_levels() -> None:
    inner = 'emails[type eq "work"]'
    parse_filter("not (" * (MAX_FILTER_DEPTH - 1) + inner + ")" * (MAX_FILTER_DEPTH - 1))
    with pytest.raises(InvalidFilter, match="deeper than"):
        parse_filter("not (" * MAX_FILTER_DEPTH + inner + ")" * MAX_FILTER_DEPTH)


def test_filter_of_max_terms_parses_and_one_term_more_is_invalid_filter() -> None:
    parse_filter(chain(MAX_FILTER_TERMS))
    with pytest.raises(InvalidFilter, match="more than"):
        parse_filter(chain(MAX_FILTER_TERMS + 1))


@pytest.mark.parametrize("joiner", ["and", "or"])
def test_long_and_or_chains_parse_into_shallow_trees(joiner: str) -> None:
    """Balanced trees: an accepted filter evaluates far from the recursion limit."""
    node = parse_filter(chain(MAX_FILTER_TERMS, joiner))

    def height(n) -> int:
        children = [getattr(n, k) for k in ("left", "right", "inner") if hasattr(n, k)]
        return 1 + max((height(c) for c in children), default=0)

    assert height(node) <= 8
    check_filter(node, USER)
    assert matches(node, {"userName": "u99"}, USER) is (joiner == "or")


def test_deepest_and_widest_accepted_filter_evaluates() -> None:
    group = "(" + chain(MAX_FILTER_TERMS // MAX_FILTER_DEPTH) + ")"
    text = "not (" * (MAX_FILTER_DEPTH - 1) + group + ")" * (MAX_FILTER_DEPTH - 1)
    node = parse_filter(text)
    check_filter(node, USER)
    assert matches(node, {"userName": "u0"}, USER) is ((MAX_FILTER_DEPTH - 1) % 2 == 0)


def test_patch_with_max_operations_applies_and_one_more_is_invalid_value(scim) -> None:
    user = scim.post("/Users", json=entra_user()).json
    ops = [
        {"op": "replace", "path": "title", "value": f"t{i}"} for i in range(MAX_PATCH_OPERATIONS)
    ]
    response = scim.patch(f"/Users/{user['id']}", json=patch(*ops))
    assert response.status_code == 200
    assert response.json["title"] == f"t{MAX_PATCH_OPERATIONS - 1}"
    ops.append({"op": "replace", "path": "title", "value": "one too many"})
    response = scim.patch(f"/Users/{user['id']}", json=patch(*ops))
    assert response.status_code == 400
    assert response.json["scimType"] == "invalidValue"


def test_start_index_beyond_max_is_answered_as_max_start_index(scim) -> None:
    """RFC 7644 §3.4.2.4: past the last result the page is empty; the echo stays a number."""
    scim.post("/Users", json=entra_user())
    response = scim.get("/Users", query_string={"startIndex": MAX_START_INDEX * 10})
    assert response.status_code == 200
    assert response.json["startIndex"] == MAX_START_INDEX
    assert response.json["totalResults"] == 1
    assert response.json["Resources"] == []


def test_start_index_below_one_is_one_and_negative_count_is_zero(scim) -> None:
    """RFC 7644 §3.4.2.4."""
    scim.post("/Users", json=entra_user())
    response = scim.get("/Users", query_string={"startIndex": -5, "count": -1})
    assert response.json["startIndex"] == 1
    assert response.json["itemsPerPage"] == 0
    assert response.json["totalResults"] == 1


def test_if_match_of_max_version_is_a_version_and_above_it_names_none(scim) -> None:
    group = scim.post("/Groups", json=entra_group()).json
    body = patch({"op": "replace", "path": "displayName", "value": "renamed"})
    at_max = scim.patch(
        f"/Groups/{group['id']}", json=body, headers={"If-Match": f'W/"{MAX_VERSION}"'}
    )
    assert at_max.status_code == 412
    assert "current version" in at_max.json["detail"]
    above = scim.patch(
        f"/Groups/{group['id']}", json=body, headers={"If-Match": f'W/"{MAX_VERSION + 1}"'}
    )
    assert above.status_code == 412
    assert "names no version" in above.json["detail"]


def test_json_body_nested_max_depth_is_read_and_one_level_more_is_invalid_syntax(scim) -> None:
    def nested_value(levels: int) -> dict:
        value: object = "x"
        for _ in range(levels - 1):  # the SearchRequest object is the first level
            value = [value]
        return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "x": value}

    assert scim.post("/Users/.search", json=nested_value(MAX_JSON_DEPTH)).status_code == 200
    response = scim.post("/Users/.search", json=nested_value(MAX_JSON_DEPTH + 1))
    assert response.status_code == 400
    assert response.json["scimType"] == "invalidSyntax"


def test_ids_the_directory_makes_have_the_id_shape_and_keys_of_other_families_do_not() -> None:
    rid = new_id()
    assert is_id(rid)
    for other in (f"{rid}:groups", f"{rid}:members", rid.upper(), rid[:-1], "", None, 7):
        assert not is_id(other)
