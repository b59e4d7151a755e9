"""List query parameters (RFC 7644 §3.4.2): the quick load gives what the schema loads."""

from __future__ import annotations

import pytest

from schemas.scim import LIST_QUERY, ValidationError, load_list_query


@pytest.mark.parametrize(
    "params",
    [{}, {"filter": 'userName eq "ada@example.test"'}, {"filter": ""}],
)
def test_a_filter_alone_loads_as_the_schema_loads_it(params):
    assert load_list_query(params) == LIST_QUERY.load(params)


def test_other_parameters_are_still_validated_by_the_schema():
    assert load_list_query({"filter": "x", "count": "5"})["count"] == 5
    with pytest.raises(ValidationError):
        load_list_query({"filter": "x", "sortOrder": "sideways"})
