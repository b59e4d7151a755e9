"""serve.sh's metrics directory: empty at every start; a dead child's live gauges go."""

from __future__ import annotations

from bridge.runtime.serve import _mark_dead, _metrics_dir


def test_the_metrics_directory_is_made_empty_at_start(tmp_path):
    old = tmp_path / "metrics"
    old.mkdir()
    (old / "counter_123.db").write_bytes(b"stale")
    made = _metrics_dir(tmp_path)
    assert made == old.resolve()
    assert list(made.iterdir()) == []


def test_a_dead_childs_live_gauges_are_dropped_and_its_counters_kept(tmp_path):
    path = _metrics_dir(tmp_path)
    for name in ("gauge_livesum_77.db", "gauge_liveall_77.db", "counter_77.db"):
        (path / name).write_bytes(b"")
    _mark_dead(77, str(path))
    assert sorted(p.name for p in path.iterdir()) == ["counter_77.db"]
