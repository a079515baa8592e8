import pytest

from bpx_flows.connectors.backpack import (
    Channel,
    DepthWindow,
    KlineInterval,
    StreamName,
    check_symbols,
    parse_stream,
    parse_streams,
)
from bpx_flows.connectors.errors import ConfigError

EVERY_PATTERN = [
    "bookTicker.SOL_USDC",
    "depth.SOL_USDC",
    "depth.200ms.SOL_USDC",
    "depth.600ms.SOL_USDC_PERP",
    "depth.1000ms.BTC_USDC",
    "kline.1s.SOL_USDC",
    "kline.1month.SOL_USDC_PERP",
    "liquidation",
    "liquidation.SOL_USDC_PERP",
    "markPrice.SOL_USDC_PERP",
    "openInterest.SOL_USDC_PERP",
    "ticker.SOL_USDC",
    "trade.SOL_USDC",
    "account.orderUpdate",
    "account.orderUpdate.SOL_USDC",
    "account.positionUpdate",
    "account.positionUpdate.SOL_USDC_PERP",
    "account.rfqUpdate",
    "account.rfqUpdate.SOL_USDC_RFQ",
    "depth.AAPL.US_USDC_PERP",
    "trade.kPEPE_USDC_PERP",
    "depth.200ms.AAPL.US_USDC_PERP",
]


@pytest.mark.parametrize("name", EVERY_PATTERN)
def test_every_channel_pattern_round_trips(name: str) -> None:
    assert str(parse_stream(name)) == name


def test_dotted_symbol_is_not_split() -> None:
    stream = parse_stream("depth.200ms.AAPL.US_USDC_PERP")
    assert stream.symbol == "AAPL.US_USDC_PERP"
    assert stream.window is DepthWindow.MS_200


def test_every_kline_interval_builds_and_parses() -> None:
    for interval in KlineInterval:
        built = StreamName(Channel.KLINE, "SOL_USDC", interval=interval)
        assert parse_stream(str(built)) == built


def test_private_channels_are_marked_private() -> None:
    assert parse_stream("account.orderUpdate.SOL_USDC").private
    assert not parse_stream("trade.SOL_USDC").private


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        pytest.param(
            "depth.100ms.SOL_USDC", "unknown depth window '100ms'", id="window"
        ),
        pytest.param("kline.7m.SOL_USDC", "unknown kline interval '7m'", id="interval"),
        pytest.param("kline.1m", "has no symbol", id="kline-no-symbol"),
        pytest.param("candles.SOL_USDC", "unknown stream", id="channel"),
        pytest.param("trade", "needs a symbol", id="missing-symbol"),
        pytest.param("trade.SOL USDC", "invalid symbol", id="bad-symbol"),
        pytest.param("trade.SOL/USDC", "invalid symbol", id="slash"),
    ],
)
def test_bad_names_are_rejected_with_the_fix(name: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_stream(name)


def test_duplicates_are_dropped_in_order() -> None:
    names = parse_streams(["trade.A", "trade.B", "trade.A"])
    assert [str(n) for n in names] == ["trade.A", "trade.B"]


def test_unknown_symbol_is_caught_with_suggestions() -> None:
    streams = parse_streams(["trade.SOL_USDC", "depth.SOL_USDT", "liquidation"])
    with pytest.raises(ConfigError, match=r"SOL_USDT.*did you mean SOL_USDC"):
        check_symbols(streams, ["SOL_USDC", "BTC_USDC"])
    check_symbols(streams[:1], ["SOL_USDC"])


@pytest.mark.parametrize("typed", ["sol_usdc", "Sol_Usdc", "sol_usdt"])
def test_a_symbol_in_the_wrong_case_gets_a_suggestion(typed: str) -> None:
    with pytest.raises(ConfigError, match=rf"'{typed}' \(did you mean SOL_USDC"):
        check_symbols([StreamName(Channel.TRADE, typed)], ["SOL_USDC", "BTC_USDC"])
