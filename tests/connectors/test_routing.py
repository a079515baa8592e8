"""Routing-aware partitions: every stream or symbol read once, where its state lives."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpx_flows.connectors.backpack.streams import parse_streams
from bpx_flows.connectors.routing import live_groups, partition, probe, replay_plan
from bpx_flows.flows.market import market_streams

SYMBOLS = ["SOL_USDC", "SOL_USDC_PERP", "BTC_USDC_PERP", "ETH_USDC_PERP", "BTC_USDC"]


def test_the_probe_is_deterministic_and_covers_every_key() -> None:
    first = probe(tuple(SYMBOLS), ("a", "b", "c"), 3)
    probe.cache_clear()
    again = probe(tuple(SYMBOLS), ("a", "b", "c"), 3)
    assert first.keys == again.keys
    assert first.parts == again.parts
    assert set(first.keys) == set(SYMBOLS)
    assert set(first.keys.values()) <= {0, 1, 2}
    assert sorted(first.parts.values()) == [0, 1, 2]


@pytest.mark.parametrize(("workers", "per_connection"), [(2, 50), (3, 4), (4, 7)])
def test_live_groups_read_each_stream_once_on_its_owner(
    workers: int, per_connection: int
) -> None:
    streams = parse_streams([*market_streams(SYMBOLS), "account.orderUpdate"])
    plan = live_groups(streams, workers, per_connection)
    assert sorted(plan) == list(range(workers))
    groups = {name: s for conns in plan.values() for name, s in conns.items()}
    assert len(groups) == sum(len(conns) for conns in plan.values())  # unique names
    grouped = [s for names in groups.values() for s in names]
    assert sorted(map(str, grouped)) == sorted(map(str, streams))
    assert all(0 < len(names) <= per_connection for names in groups.values())
    owners = probe(tuple(sorted(SYMBOLS)), (), workers).keys
    for worker, conns in plan.items():
        for names in conns.values():
            for stream in names:
                expected = 0 if stream.symbol is None else owners[stream.symbol]
                assert worker == expected, stream


def test_one_worker_has_every_stream_and_needs_no_plan(tmp_path: Path) -> None:
    streams = parse_streams(["trade.SOL_USDC", "depth.SOL_USDC", "trade.BTC_USDC"])
    assert live_groups(streams, 1, 2) == {0: partition(streams, 2)}
    assert replay_plan([str(tmp_path / "x.jsonl")], SYMBOLS, 1) is None


def test_a_replay_plan_gives_each_symbol_to_one_partition_per_file() -> None:
    plan = replay_plan(["a.jsonl.gz", "b.jsonl.gz"], SYMBOLS, 2)
    assert plan is not None
    for path in ("a.jsonl.gz", "b.jsonl.gz"):
        parts = [v for v in plan.parts.values() if v[0] == path]
        assert len(parts) == 2
        owned = [symbol for _, symbols, _ in parts for symbol in symbols]
        assert sorted(owned) == sorted(SYMBOLS)
        assert sum(default for _, _, default in parts) == 1


@pytest.mark.parametrize("workers", [2, 3, 4])
def test_balanced_routes_spread_symbols_evenly_where_bytewax_sends_them(
    workers: int,
) -> None:
    from bpx_flows.connectors.routing import balanced_routes

    symbols = [f"S{i:03d}_USDC" for i in range(10)]
    route, owner = balanced_routes(symbols, workers)
    loads = [list(owner.values()).count(w) for w in range(workers)]
    assert max(loads) - min(loads) <= 1
    assert all(route[s] == s or route[s].startswith(f"{s}#") for s in symbols)
    landed = probe(tuple(sorted(route.values())), (), workers).keys
    assert all(landed[route[s]] == owner[s] for s in symbols)
