"""A sharded replay: each line reaches exactly the shards it belongs to."""

from __future__ import annotations

import json

from hypothesis import given, settings, strategies as st

from bpx_flows.connectors.shard import _DATA, _DATA_SYMBOL, Shard, _data_symbol

OWNED = {
    "a": frozenset({"SOL_USDC", "AAPL.US_USDC_PERP"}),
    "b": frozenset({"BTC_USDC"}),
}
KNOWN = frozenset().union(*OWNED.values())


def _head_layout(stream: str, n: int) -> bytes:
    data = json.dumps({"e": "x", "pad": "p" * (n % 5) * 300}, separators=(",", ":"))
    return b'{"recv_us":%d,"stream":"%s","data":%s}\n' % (
        n,
        stream.encode(),
        data.encode(),
    )


def _tail_layout(stream: str, n: int) -> bytes:
    # As the exchange sends frames: data first, the stream after kilobytes of levels.
    levels = [[f"86700.{i}", "1.5"] for i in range(60 + n % 3)]
    data = json.dumps({"a": levels, "e": "depth"}, separators=(",", ":"))
    return b'{"recv_us":%d,"data":%s,"stream":"%s"}\n' % (
        n,
        data.encode(),
        stream.encode(),
    )


STREAMS = [
    "depth.SOL_USDC",
    "depth.200ms.SOL_USDC",
    "trade.BTC_USDC",
    "markPrice.AAPL.US_USDC_PERP",  # a symbol with a dot
    "liquidation",  # no symbol: the default shard's
    "trade.ETH_USDC",  # a symbol nobody owns: the default shard's
]
OWNER = {s: "b" if "BTC" in s else "a" for s in STREAMS}
CONTROL = [
    b'{"recorder":"bpx-flows","version":1,"streams":[],"started_us":1}\n',
    b'{"recv_us":5,"disconnect":"server_close"}\n',
]
REST = b'{"recv_us":6,"rest":"/api/v1/depth","for_stream":"depth.%s","data":{}}\n'
RAW = b'{"recv_us":7,"raw":"not json"}\n'
# All-markets streams: the symbol inside the data decides, in both layouts.
ALL_MARKETS = [
    ("liquidation", "BTC_USDC", {"b"}),
    ("liquidation", "SOL_USDC", {"a"}),
    ("liquidation", "ETH_USDC", {"a"}),  # nobody's: the default shard's
    ("account.orderUpdate", "BTC_USDC", {"b"}),
    ("account.positionUpdate", "AAPL.US_USDC_PERP", {"a"}),
    ("account.rfqUpdate", "SOL_USDC_RFQ", {"a"}),
]


def _all_markets(stream: str, symbol: str, head: bool) -> bytes:
    data = b'{"e":"x","E":1,"s":"%s","q":"1"}' % symbol.encode()
    if head:
        return b'{"recv_us":8,"stream":"%s","data":%s}\n' % (stream.encode(), data)
    return b'{"recv_us":8,"data":%s,"stream":"%s"}\n' % (data, stream.encode())


def _lines() -> list[tuple[bytes, set[str]]]:
    """Every kind of line, with the shards that must keep it."""
    out: list[tuple[bytes, set[str]]] = []
    for n, stream in enumerate(STREAMS * 3):
        for make in (_head_layout, _tail_layout):
            out.append((make(stream, n), {OWNER[stream]}))
    out += [(line, {"a", "b"}) for line in CONTROL]
    out += [(REST % b"SOL_USDC", {"a"}), (REST % b"BTC_USDC", {"b"}), (RAW, {"a"})]
    for stream, symbol, owners in ALL_MARKETS * 2:
        for head in (True, False):
            out.append((_all_markets(stream, symbol, head), owners))
    return out


def _shards() -> dict[str, Shard]:
    return {name: Shard(OWNED[name], KNOWN, name == "a") for name in OWNED}


def test_each_line_reaches_exactly_its_shards_in_both_layouts() -> None:
    lines = _lines()
    assert any(len(line) > 1000 for line, _ in lines)  # the stream is far from the head
    shards = _shards()
    for line, owners in lines:
        assert {n for n, shard in shards.items() if shard.keeps(line)} == owners, line


@settings(max_examples=60, deadline=None)
@given(st.permutations(_lines()), st.integers(min_value=1, max_value=20))
def test_selecting_blocks_equals_deciding_each_line(
    lines: list[tuple[bytes, set[str]]], block: int
) -> None:
    # Blocks after the first use the compiled patterns: same answers, same order.
    raw = [line for line, _ in lines]
    for name, shard in _shards().items():
        selected = [
            kept
            for at in range(0, len(raw), block)
            for kept in shard.select(raw[at : at + block])
        ]
        assert selected == [line for line, owners in lines if name in owners]


def test_a_selection_drops_all_markets_lines_of_other_symbols_but_keeps_rfqs() -> None:
    # One worker replaying SOL_USDC only: another market's liquidation is not ours,
    # an RFQ (on its own *_RFQ symbol) always is.
    only = frozenset({"SOL_USDC"})
    shard = Shard(only, only, default=True, others=False)
    for head in (True, False):
        assert shard.keeps(_all_markets("liquidation", "SOL_USDC", head))
        assert not shard.keeps(_all_markets("liquidation", "BTC_USDC", head))
        assert not shard.keeps(_all_markets("account.orderUpdate", "BTC_USDC", head))
        assert shard.keeps(_all_markets("account.rfqUpdate", "SOL_USDC_RFQ", head))


def _searched(line: bytes) -> bytes | None:
    """The symbol as a regular-expression search from the data finds it."""
    at = line.find(_DATA)
    found = _DATA_SYMBOL.search(line, at + len(_DATA) - 1) if at >= 0 else None
    return None if found is None else found.group(1)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                b'"data":{',
                b'"s":"',
                b'"S":"',
                b"{",
                b",",
                b'"',
                b"\\",
                b"SOL",
                b"x" * 70,
            ]
        ),
        max_size=14,
    )
)
def test_a_lines_data_symbol_is_the_one_a_search_finds(parts: list[bytes]) -> None:
    line = b"".join(parts)
    assert _data_symbol(line) == _searched(line)
