"""Every frame the simulator emits validates against the AsyncAPI schemas, decodes."""

from __future__ import annotations

import copy
import json
from collections import Counter

import jsonschema
import pytest

from bpx_flows.connectors.backpack import BadFrame, FrameDecoder, parse_stream
from bpx_flows.connectors.backpack.streams import Channel, DepthWindow, KlineInterval
from bpx_flows.connectors.backpack.wire import Frame, ServerError
from bpx_flows.connectors.sim import Dialect, Exchange, FrameEncoder, SimConfig

START_US = 1_790_000_000_000_000
SCHEMA_OF = {
    Channel.BOOK_TICKER: "BookTickerEvent",
    Channel.DEPTH: "DepthEvent",
    Channel.KLINE: "KlineEvent",
    Channel.LIQUIDATION: "LiquidationEvent",
    Channel.MARK_PRICE: "MarkPriceEvent",
    Channel.OPEN_INTEREST: "OpenInterestEvent",
    Channel.TICKER: "TickerEvent",
    Channel.TRADE: "TradeEvent",
    Channel.ORDER_UPDATE: "OrderUpdateEvent",
    Channel.POSITION_UPDATE: "PositionUpdateEvent",
    Channel.RFQ_UPDATE: "RfqUpdateEvent",
}


def every_stream(exchange: Exchange) -> set[str]:
    names = {
        "liquidation",
        "account.orderUpdate",
        "account.positionUpdate",
        "account.rfqUpdate",
    }
    for symbol in exchange.engines:
        names |= {
            f"bookTicker.{symbol}",
            f"depth.{symbol}",
            f"markPrice.{symbol}",
            f"openInterest.{symbol}",
            f"ticker.{symbol}",
            f"trade.{symbol}",
            f"liquidation.{symbol}",
            f"account.orderUpdate.{symbol}",
            f"account.positionUpdate.{symbol}",
        }
        names |= {f"depth.{w.value}.{symbol}" for w in DepthWindow}
        names |= {f"kline.{i.value}.{symbol}" for i in KlineInterval}
    return names


def loosen_for_the_wire(schemas: dict) -> dict:
    """Apply exactly the drifts WIRE-NOTES.md documents, nothing more."""
    loose = copy.deepcopy(schemas)
    for schema in loose.values():
        for name, prop in schema.get("properties", {}).items():
            if name in ("E", "T") and prop.get("type") == "integer":
                prop["type"] = ["integer", "string"]  # 2025 captures: decimal strings
    loose["BookTickerEvent"]["properties"]["u"]["type"] = ["string", "integer"]
    for side in "aAbB":
        loose["BookTickerEvent"]["properties"][side]["type"] = ["string", "null"]
    position = loose["PositionUpdateEvent"]["properties"]
    for name in "bBfMmqQn":
        position[name]["type"] = ["number", "string"]
    position["i"]["type"] = ["string", "integer"]
    loose["OrderUpdateEvent"]["properties"]["t"]["type"] = ["integer", "null"]
    return loose


def session_frames(dialect: Dialect, seconds: int = 150) -> list[bytes]:
    exchange = Exchange(SimConfig(seed=11, cascade_every_s=30.0), START_US)
    exchange.wanted = every_stream(exchange)
    encoder = FrameEncoder(dialect)
    frames = [
        encoder.encode(s, r)
        for s, r in exchange.advance_to(START_US + seconds * 1_000_000)
    ]
    frames += [
        encoder.encode("account.positionUpdate", row)
        for row in exchange.position_snapshot(None)
    ]
    return frames


@pytest.fixture(scope="module")
def spec_frames() -> list[bytes]:
    return session_frames(Dialect.SPEC)


@pytest.mark.parametrize("dialect", [Dialect.SPEC, Dialect.WIRE, Dialect.STRINGS])
def test_every_frame_validates_and_decodes(asyncapi: dict, dialect: Dialect) -> None:
    schemas = asyncapi["components"]["schemas"]
    if dialect is not Dialect.SPEC:
        schemas = loosen_for_the_wire(schemas)
    validators = {
        name: jsonschema.Draft7Validator(schema) for name, schema in schemas.items()
    }
    envelope = jsonschema.Draft7Validator(schemas["StreamEnvelope"])
    decoder = FrameDecoder()
    seen: Counter[Channel] = Counter()
    seconds = 150 if dialect is Dialect.SPEC else 60
    for raw in session_frames(dialect, seconds):
        frame = json.loads(raw)
        envelope.validate(frame)
        channel = parse_stream(frame["stream"]).channel
        validators[SCHEMA_OF[channel]].validate(frame["data"])
        decoded = decoder.decode(raw)
        assert isinstance(decoded, Frame), decoded
        assert not isinstance(decoded, BadFrame | ServerError)
        seen[channel] += 1
    assert set(seen) == set(SCHEMA_OF)


def test_session_covers_every_event_kind(spec_frames: list[bytes]) -> None:
    kinds = Counter()
    for raw in spec_frames:
        frame = json.loads(raw)
        kinds[frame["data"].get("e", "<snapshot>")] += 1
    expected = {
        "bookTicker",
        "depth",
        "kline",
        "liquidation",
        "markPrice",
        "openInterest",
        "ticker",
        "trade",
        "orderAccepted",
        "orderCancelled",
        "orderExpired",
        "orderFill",
        "orderModified",
        "triggerPlaced",
        "triggerFailed",
        "positionOpened",
        "positionAdjusted",
        "positionClosed",
        "rfqActive",
        "rfqAccepted",
        "rfqCandidate",
        "rfqFilled",
        "quoteAccepted",
    }
    assert expected <= set(kinds), expected - set(kinds)


def test_spec_dialect_uses_the_spec_types(spec_frames: list[bytes]) -> None:
    for raw in spec_frames:
        frame = json.loads(raw)
        data = frame["data"]
        if data.get("e") == "bookTicker":
            assert isinstance(data["u"], str)
        if frame["stream"].startswith("account.positionUpdate"):
            assert isinstance(data["M"], int | float) and isinstance(data["i"], str)
            assert "l" not in data


def test_same_seed_reproduces_the_session() -> None:
    assert session_frames(Dialect.WIRE, 20) == session_frames(Dialect.WIRE, 20)
