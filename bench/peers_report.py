"""The side-by-side tables of ``scim_load --peers``: one per figure, servers as columns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.scenarios import SCENARIOS

REDIS_BYTES_PER_USER_TARGET = 1600
"""Issue 11: Redis memory per user stays at or under 1.6 KB."""

BRIDGE_ROLES = ("web", "deliver_worker", "sync_worker", "redis", "supervisor")

Row = dict[str, Any]


def _servers(results: dict[str, Any]) -> list[str]:
    return [name for name, s in results["servers"].items() if s.get("available")]


def _cell_text(row: Row | None, figure: Callable[[Row], str]) -> str:
    if row is None:
        return "-"
    return figure(row) + (" !" if row["errors"] else "")


def _table(
    results: dict[str, Any],
    title: str,
    figure: Callable[[Row], str],
    ratios: bool = False,
    servers: list[str] | None = None,
) -> None:
    servers = servers or _servers(results)
    peers = [s for s in servers if s != "bridge"] if "bridge" in servers and ratios else []
    head = ["scenario", "c", *servers, *(f"bridge/{p}" for p in peers)]
    lines = []
    for name, by_c in results["scenarios"].items():
        for c, cells in by_c.items():
            line = [SCENARIOS[name].title, c]
            line += [_cell_text(cells.get(s), figure) for s in servers]
            for peer in peers:
                base = cells.get(peer, {}).get("rps")
                mine = cells.get("bridge", {}).get("rps")
                line.append(f"{mine / base:.2f}" if base and mine else "-")
            lines.append(line)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines, strict=True)]
    print(f"\n{title}")
    print(_line(head, widths))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print(_line(line, widths))


def _line(cells: list[str], widths: list[int]) -> str:
    """The first column left-aligned, the figures right-aligned."""
    first, *rest = zip(cells, widths, strict=True)
    return "  ".join([f"{first[0]:<{first[1]}}", *(f"{x:>{w}}" for x, w in rest)])


def _rows(results: dict[str, Any], server: str) -> list[Row]:
    return [
        cells[server]
        for by_c in results["scenarios"].values()
        for cells in by_c.values()
        if server in cells
    ]


def print_report(results: dict[str, Any]) -> None:
    for name, server in results["servers"].items():
        what = server.get("what") if server.get("available") else f"not available: {server['why']}"
        print(f"{name}: {what}")
    _table(results, "req/s (! = a cell with non-2xx answers)", lambda r: f"{r['rps']:,.0f}", True)
    _table(results, "p50 / p99 ms", lambda r: f"{r['p50_ms']:.1f} / {r['p99_ms']:.1f}")
    _table(
        results,
        "CPU ms per request, the server's process tree (cores used)",
        lambda r: f"{r['cpu_ms_per_request'] or 0:.2f} ({r['cpu_cores']:.2f})",
    )
    _table(results, "RSS MB of the process tree, after the cell", lambda r: f"{r['rss_mb']:,.0f}")
    _table(results, "non-2xx answers or failed requests", lambda r: f"{r['errors']:,}")
    _table(
        results,
        "users held when the cell started",
        lambda r: "?" if r.get("users_at_start") is None else f"{r['users_at_start']:,}",
    )
    bridge = _rows(results, "bridge")
    if bridge:
        parts = ("web", "deliver_worker", "sync_worker", "redis")
        _table(
            results,
            "bridge CPU cores by process: " + " / ".join(p.replace("_", " ") for p in parts),
            lambda r: " / ".join(f"{r.get(f'{p}_cpu_cores', 0):.2f}" for p in parts),
            servers=["bridge"],
        )
        peak = {role: max(r.get(f"{role}_rss_mb", 0) for r in bridge) for role in BRIDGE_ROLES}
        print(
            "\nbridge RSS, highest after any cell (MB): "
            + ", ".join(f"{role.replace('_', ' ')} {mb:,.0f}" for role, mb in peak.items())
        )
    for note in results.get("notes", []):
        print(f"note: {note}")
    for name, by_c in results["scenarios"].items():
        for c, cells in by_c.items():
            for server, row in cells.items():
                for sample in row.get("error_samples", [])[:1]:
                    print(f"  ! {name} c={c} {server}: {sample[:240]}")
    mem = results.get("memory")
    if mem:
        ok = "ok" if mem["bytes_per_user"] <= REDIS_BYTES_PER_USER_TARGET else "MISS"
        print(
            f"\nbridge Redis memory: {mem['bytes_per_user']:,} bytes/user at {mem['users']:,} "
            f"users (target <= {REDIS_BYTES_PER_USER_TARGET:,}: {ok})"
        )
    print()
