import json
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings, strategies as st

from bpx_flows.connectors.backpack import BadFrame, BadReason, FrameDecoder
from bpx_flows.connectors.backpack.wire import (
    BookTicker,
    Depth,
    Frame,
    Kline,
    OrderEventType,
    OrderUpdate,
    PositionUpdate,
    RfqUpdate,
    ServerError,
    Side,
    Trade,
)
from tests.conftest import FIXTURES

CAPTURES = [
    json.loads(line)
    for line in (FIXTURES / "wire_captures.jsonl").read_text().splitlines()
    if line.strip()
]


@pytest.mark.parametrize("capture", CAPTURES, ids=[c["case"] for c in CAPTURES])
def test_every_real_capture_decodes(capture: dict) -> None:
    frame = FrameDecoder().decode(json.dumps(capture["frame"]), recv_us=7)
    assert isinstance(frame, Frame), frame
    assert frame.stream == capture["frame"]["stream"]
    assert frame.recv_us == 7


def decode(obj: object) -> object:
    return FrameDecoder().decode(json.dumps(obj))


def test_string_times_and_ids_decode_as_integers() -> None:
    frame = decode(CAPTURES[5]["frame"])  # kline with "E" as a string
    assert isinstance(frame, Frame) and isinstance(frame.data, Kline)
    assert frame.data.E == 1754519557526056
    ticker = decode(CAPTURES[1]["frame"])  # docs bookTicker: "u" as a string
    assert isinstance(ticker, Frame) and isinstance(ticker.data, BookTicker)
    assert ticker.data.u == 111063070525358080


def test_prices_stay_exact_strings() -> None:
    frame = decode(CAPTURES[4]["frame"])
    assert isinstance(frame, Frame) and isinstance(frame.data, Depth)
    assert frame.data.b[1] == ("2755.33", "0.0000")


def test_rfq_ids_beyond_2_53_stay_exact() -> None:
    frame = decode(CAPTURES[-1]["frame"])
    assert isinstance(frame, Frame) and isinstance(frame.data, RfqUpdate)
    assert frame.data.R == 113392053149171712


def test_position_numbers_decode_exactly_from_strings_and_numbers() -> None:
    wire = decode(CAPTURES[14]["frame"])
    assert isinstance(wire, Frame) and isinstance(wire.data, PositionUpdate)
    assert Decimal("4235.88650933") == wire.data.M
    assert wire.data.i == 5411399049
    spec = dict(CAPTURES[14]["frame"]["data"], M=4235.88650933, i="5411399049")
    del spec["e"]  # the snapshot row sent on subscribe
    snap = decode({"stream": "account.positionUpdate", "data": spec})
    assert isinstance(snap, Frame) and snap.data.e is None
    assert Decimal("4235.88650933") == snap.data.M and snap.data.i == 5411399049


def test_order_update_null_trade_id_and_enums() -> None:
    frame = decode(CAPTURES[11]["frame"])
    assert isinstance(frame, Frame) and isinstance(frame.data, OrderUpdate)
    assert frame.data.e is OrderEventType.ACCEPTED
    assert frame.data.S is Side.BID and frame.data.t is None and frame.data.r is False


def test_null_book_ticker_side_means_empty() -> None:
    data = dict(CAPTURES[0]["frame"]["data"], a=None, A=None)
    frame = decode({"stream": "bookTicker.BTC_USDC_PERP", "data": data})
    assert isinstance(frame, Frame) and frame.data.a is None


def test_unknown_extra_fields_are_ignored() -> None:
    data = dict(CAPTURES[10]["frame"]["data"], zz="new field")
    frame = decode({"stream": "trade.BTC_USDC_PERP", "data": data})
    assert isinstance(frame, Frame) and isinstance(frame.data, Trade)


def test_error_frame_is_typed() -> None:
    err = decode({"id": None, "error": {"code": 4006, "message": "Invalid stream"}})
    assert isinstance(err, ServerError)
    assert (err.error.code, err.error.message) == (4006, "Invalid stream")


@pytest.mark.parametrize(
    ("raw", "reason", "path"),
    [
        pytest.param("not json", BadReason.NOT_JSON, None, id="not-json"),
        pytest.param("[1, 2]", BadReason.NOT_A_FRAME, None, id="array"),
        pytest.param(
            '{"stream": "trade.X"}', BadReason.NOT_A_FRAME, None, id="no-data"
        ),
        pytest.param(
            '{"stream": "nope.X", "data": {}}',
            BadReason.UNKNOWN_STREAM,
            None,
            id="stream",
        ),
        pytest.param(
            '{"stream": "trade.X", "data": {"e": "depthEvent"}}',
            BadReason.WRONG_EVENT,
            "$.data.e",
            id="old-tag",
        ),
        pytest.param(
            json.dumps(
                {"stream": "trade.BTC_USDC_PERP", "data": CAPTURES[2]["frame"]["data"]}
            ),
            BadReason.WRONG_EVENT,
            None,
            id="depth-on-trade-stream",
        ),
        pytest.param(
            json.dumps(
                {
                    "stream": "trade.BTC_USDC_PERP",
                    "data": dict(CAPTURES[10]["frame"]["data"], t="abc"),
                }
            ),
            BadReason.INVALID_FIELD,
            "$.data.t",
            id="ill-typed",
        ),
        pytest.param(
            json.dumps(
                {
                    "stream": "account.orderUpdate",
                    "data": {
                        k: v
                        for k, v in CAPTURES[12]["frame"]["data"].items()
                        if k != "i"
                    },
                }
            ),
            BadReason.INVALID_FIELD,
            "$.data",
            id="private-missing-field",
        ),
    ],
)
def test_bad_frames_become_typed_records(
    raw: str, reason: BadReason, path: str | None
) -> None:
    bad = FrameDecoder().decode(raw, recv_us=3)
    assert isinstance(bad, BadFrame)
    assert bad.reason is reason
    assert bad.path == path
    assert bad.raw_prefix == raw[:200]
    assert bad.recv_us == 3


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from([*"eEsTtuUabpq", "stream", "data"]),
            children,
            max_size=6,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=200), st.text(max_size=200), json_values.map(json.dumps)
    )
)
def test_decoder_never_raises(raw: bytes | str) -> None:
    result = FrameDecoder().decode(raw)
    assert isinstance(result, Frame | ServerError | BadFrame)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(CAPTURES),
    st.sampled_from(["E", "T", "s", "u", "U", "t", "p", "e"]),
    json_values,
)
def test_mutated_captures_never_raise(capture: dict, key: str, value: object) -> None:
    frame = dict(capture["frame"])
    frame["data"] = dict(frame["data"], **{key: value})
    result = FrameDecoder().decode(msgspec.json.encode(frame))
    assert isinstance(result, Frame | ServerError | BadFrame)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(CAPTURES).map(lambda c: json.dumps(c["frame"]).encode()),
            st.binary(max_size=80),
            json_values.map(lambda v: json.dumps(v).encode()),
        ),
        max_size=12,
    )
)
def test_decode_all_equals_decoding_each(raws: list[bytes]) -> None:
    # Fresh decoders: the channel cache must not change any answer.
    assert FrameDecoder().decode_all(raws) == [FrameDecoder().decode(r) for r in raws]
