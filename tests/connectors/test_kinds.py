"""A record's kind: one name for JSON lines, Parquet datasets and Kafka headers."""

from __future__ import annotations

import json

import msgspec

from bpx_flows.connectors.backpack.wire import Frame, Trade
from bpx_flows.connectors.kinds import kind_of, record_json
from bpx_flows.operators.book_state import BookIntegrity, IntegrityKind


def test_a_kind_is_the_type_in_snake_case_and_a_frame_is_its_event() -> None:
    trade = Trade(E=1, s="SOL_USDC", p="1", q="1", b="1", a="2", t=1, T=1, m=False)
    assert kind_of(Frame("trade.SOL_USDC", trade)) == "trade"
    integrity = BookIntegrity(
        stream="depth.X", symbol="X", kind=IntegrityKind.GAP, update_id=1, recv_us=1
    )
    assert kind_of(integrity) == "book_integrity"


def test_every_json_record_starts_with_its_type_and_keeps_its_own_keys() -> None:
    integrity = BookIntegrity(
        stream="depth.X", symbol="X", kind=IntegrityKind.GAP, update_id=7, recv_us=1
    )
    line = record_json(integrity)
    assert line.startswith(b'{"type":"book_integrity",')
    data = json.loads(line)
    assert data["kind"] == "gap"  # the record's own field, untouched
    assert data == {"type": "book_integrity", **msgspec.to_builtins(integrity)}


def test_a_record_without_fields_is_still_one_object() -> None:
    class Empty(msgspec.Struct):
        pass

    assert json.loads(record_json(Empty())) == {"type": "empty"}
