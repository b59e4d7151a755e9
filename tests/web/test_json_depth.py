"""The bound on JSON nesting (bridge.web.body): exact at the limit, and the quick bound on
the text never lets a deep body through."""

from __future__ import annotations

import orjson

from bridge.web.body import MAX_JSON_DEPTH, may_be_too_deep, too_deep


def nested(depth: int) -> object:
    value: object = "leaf"
    for n in range(depth):
        value = [value] if n % 2 else {"k": value}
    return value


def test_nesting_up_to_the_limit_is_allowed_and_one_more_is_not():
    assert not too_deep(nested(MAX_JSON_DEPTH))
    assert too_deep(nested(MAX_JSON_DEPTH + 1))


def test_a_wide_body_is_as_deep_as_its_deepest_branch():
    wide = {"members": [{"value": str(n)} for n in range(500)], "deep": nested(MAX_JSON_DEPTH)}
    assert too_deep(wide)
    assert not too_deep({"members": [{"value": str(n)} for n in range(500)]})


def test_text_with_few_brackets_cannot_be_too_deep_and_a_deep_body_is_always_examined():
    assert not may_be_too_deep(orjson.dumps({"userName": "ada", "emails": [{"value": "a"}]}))
    for depth in (MAX_JSON_DEPTH + 1, MAX_JSON_DEPTH + 10):
        assert may_be_too_deep(orjson.dumps(nested(depth)))


def test_a_scalar_has_no_depth_and_an_empty_container_has_one():
    assert not too_deep("text", 0)
    assert too_deep({}, 0)
    assert not too_deep([], 1)


def test_many_members_at_one_level_are_as_deep_as_one():
    """Entra adds group members a hundred at a time: wide, not deep."""
    body = {"Operations": [{"op": "Add", "path": "members", "value": [{"value": "x"}] * 500}]}
    assert not too_deep(body, 5)
    assert too_deep(body, 4)
