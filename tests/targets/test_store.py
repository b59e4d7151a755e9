"""The target store's cache: targets are parsed once per configuration version, read by
the store or handed to it by a caller that read it with something else."""

from __future__ import annotations

from tests.factories import target_config
from workers.context import context


def test_a_target_is_parsed_again_only_when_the_version_given_moves(app):
    store = context().targets
    target_id = store.create(target_config(name="hook"))["id"]
    read = store.version()
    first = store.cached(target_id, read)
    store.update(target_id, {"enabled": False})
    assert store.cached(target_id, read) is first  # the caller's version: no read of its own
    assert store.cached(target_id, store.version()).enabled is False
    assert store.cached(target_id).enabled is False
