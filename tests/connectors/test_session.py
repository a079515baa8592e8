import json

import pytest

from bpx_flows.connectors.backpack import (
    Credentials,
    Session,
    parse_streams,
    verify_subscribe,
)
from bpx_flows.connectors.backpack.decode import BadFrame
from bpx_flows.connectors.backpack.wire import Frame, ServerError
from bpx_flows.connectors.errors import ConfigError

NOW_MS = 1_790_000_000_000


def test_connect_queues_one_public_and_one_signed_frame(
    credentials: Credentials,
) -> None:
    streams = parse_streams(["trade.SOL_USDC", "account.orderUpdate", "depth.SOL_USDC"])
    session = Session(streams, credentials)
    session.connected(NOW_MS)
    public, private = (json.loads(f) for f in session.data_to_send())
    assert public == {
        "method": "SUBSCRIBE",
        "params": ["trade.SOL_USDC", "depth.SOL_USDC"],
    }
    assert private["params"] == ["account.orderUpdate"]
    assert verify_subscribe(private["signature"], NOW_MS) == credentials.public_key
    assert session.data_to_send() == []


def test_reconnect_resubscribes_everything_with_a_fresh_signature(
    credentials: Credentials,
) -> None:
    session = Session(parse_streams(["account.positionUpdate"]), credentials)
    session.connected(NOW_MS)
    first = json.loads(session.data_to_send()[0])["signature"]
    session.connected(NOW_MS + 60_000)
    second = json.loads(session.data_to_send()[0])["signature"]
    assert first[2] == str(NOW_MS) and second[2] == str(NOW_MS + 60_000)
    assert first[1] != second[1]


def test_private_stream_without_credentials_is_refused_up_front() -> None:
    with pytest.raises(ConfigError, match="BPX_API_SECRET"):
        Session(parse_streams(["account.orderUpdate"]))


def test_subscribe_and_unsubscribe_track_state() -> None:
    session = Session(parse_streams(["trade.A"]))
    session.subscribe(parse_streams(["trade.A", "trade.B"]), NOW_MS)
    assert json.loads(session.data_to_send()[0])["params"] == ["trade.B"]
    session.unsubscribe(parse_streams(["trade.A", "trade.C"]))
    frame = json.loads(session.data_to_send()[0])
    assert frame == {"method": "UNSUBSCRIBE", "params": ["trade.A"]}
    assert [str(s) for s in session.streams] == ["trade.B"]


def test_frames_are_decoded_and_counted() -> None:
    session = Session(parse_streams(["trade.BTC_USDC_PERP"]))
    trade = (
        '{"data":{"E":1,"T":1,"a":"1","b":"2","e":"trade","m":false,"p":"86642.9",'
        '"q":"0.07206","s":"BTC_USDC_PERP","t":99419870},"stream":"trade.BTC_USDC_PERP"}'
    )
    session.receive_text(trade, 5)
    session.receive_text("garbage", 6)
    session.receive_text(
        '{"id":null,"error":{"code":4006,"message":"Invalid stream"}}', 7
    )
    frame, bad, err = session.events_received()
    assert isinstance(frame, Frame) and frame.recv_us == 5
    assert isinstance(bad, BadFrame) and isinstance(err, ServerError)
    assert session.events_received() == []
    stats = session.stats
    assert stats.frames["trade.BTC_USDC_PERP"] == 1
    assert stats.bad_frames["not_json"] == 1 and stats.server_errors[4006] == 1
    assert stats.bytes_received == len(trade) + len("garbage") + 60
