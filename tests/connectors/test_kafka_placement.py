"""Where the raw feed's lines go in a topic (sans-I/O): the shard rules, one clock."""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import pytest

from bpx_flows.connectors.kafka.placement import LinePlacement, clock_line
from bpx_flows.connectors.recording import iter_lines
from bpx_flows.connectors.shard import Shard

ROOT = Path(__file__).resolve().parents[2]
SESSION = ROOT / "data" / "sessions" / "sim-session.jsonl.gz"

HEADER = (
    b'{"recorder":"bpx-flows","version":1,"streams":["trade.A_B"],"started_us":1}\n'
)


def frame(recv_us: int, stream: str, data: str = '{"s":"X"}') -> bytes:
    return b'{"recv_us":%d,"stream":"%s","data":%s}\n' % (
        recv_us,
        stream.encode(),
        data.encode(),
    )


def partition_of(symbol: str, partitions: int) -> int:
    return zlib.crc32(symbol.encode()) % partitions


def test_control_lines_reach_every_partition_without_a_key() -> None:
    placement = LinePlacement(3)
    disconnect = b'{"recv_us":5,"disconnect":"closed"}\n'
    for line in (HEADER, disconnect):
        assert placement.place(line) == [(p, None, line) for p in range(3)]


def test_a_markets_lines_of_every_stream_share_its_partition_and_key() -> None:
    placement = LinePlacement(7)
    symbol = "SOL_USDC_PERP"
    home = partition_of(symbol, 7)
    lines = [
        frame(1_000_000, f"depth.{symbol}"),
        frame(1_000_001, f"trade.{symbol}"),
        frame(1_000_002, "liquidation", '{"e":"liquidation","s":"SOL_USDC_PERP"}'),
        b'{"recv_us":1000003,"rest":"/api/v1/depth","for_stream":"depth.SOL_USDC_PERP",'
        b'"params":{},"data":{}}\n',
    ]
    for line in lines:
        placed = [p for p in placement.place(line) if p[2] == line]
        assert placed == [(home, symbol.encode(), line)]


def test_lines_of_no_market_go_to_the_default_partition() -> None:
    placement = LinePlacement(5)
    rfq = frame(1, "account.rfqUpdate", '{"e":"rfqActive","s":"SOL_USDC_RFQ"}')
    raw = b'{"recv_us":2,"raw":"not json"}\n'
    nameless = frame(3, "liquidation", '{"e":"liquidation"}')
    for line in (rfq, raw, nameless):
        assert placement.place(line) == [(0, None, line)]


def test_a_new_second_elsewhere_is_announced_on_the_default_partition_once() -> None:
    symbol = next(s for s in ("A_B", "C_D", "E_F", "G_H") if partition_of(s, 2) == 1)
    placement = LinePlacement(2)
    first = frame(7_100_000, f"trade.{symbol}")
    same_second = frame(7_900_000, f"trade.{symbol}")
    next_second = frame(8_000_001, f"trade.{symbol}")
    assert placement.place(first) == [
        (0, None, clock_line(7_100_000)),
        (1, symbol.encode(), first),
    ]
    assert placement.place(same_second) == [(1, symbol.encode(), same_second)]
    assert placement.place(next_second)[0] == (0, None, clock_line(8_000_001))


def test_the_default_partitions_own_lines_move_its_clock() -> None:
    symbol = next(s for s in ("A_B", "C_D", "E_F", "G_H") if partition_of(s, 2) == 1)
    placement = LinePlacement(2)
    placement.place(b'{"recv_us":9000000,"disconnect":"x"}\n')  # second 9, everywhere
    line = frame(9_500_000, f"trade.{symbol}")
    assert placement.place(line) == [(1, symbol.encode(), line)]  # no clock needed


def test_a_topic_has_partitions() -> None:
    with pytest.raises(ValueError, match="at least one partition"):
        LinePlacement(0)


@pytest.mark.parametrize("partitions", [1, 2, 3, 8])
def test_each_partition_holds_what_the_matching_replay_shard_keeps(
    partitions: int,
) -> None:
    """Placement and ``Shard`` agree line for line on the shipped session."""
    lines = list(iter_lines(SESSION))
    placement = LinePlacement(partitions)
    placed: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
    for line in lines:
        for partition, _, text in placement.place(line):
            if b'"clock":true' not in text:
                placed[partition].append(text)
    symbols = {
        found.decode()
        for line in lines
        for found in re.findall(rb'"s":"([^"]+)"', line)
        if not found.endswith(b"_RFQ")
    }
    known = frozenset(symbols)
    for partition in range(partitions):
        mine = frozenset(s for s in symbols if partition_of(s, partitions) == partition)
        shard = Shard(mine, known, default=partition == 0)
        assert placed[partition] == shard.select(lines), partition
    assert sum(map(len, placed.values())) >= len(lines)
