"""The recorder keeps frames exact, except signatures, which it never writes."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from bpx_flows.connectors import recording
from bpx_flows.connectors.backpack.replayer import Replayer
from bpx_flows.connectors.recording import (
    Recorder,
    RecordingReader,
    is_frame_line,
    iter_lines,
)
from tests.test_shipped_session import SESSION


def test_an_echoed_signature_is_redacted_and_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    echoed = (
        '{"id":null,"error":{"code":4003,"message":"Unknown API key"},'
        '"request":{"method":"SUBSCRIBE","params":["account.orderUpdate"],'
        '"signature":["S0VZ","U0lHTkFUVVJF","1790000000000","5000"]}}'
    )
    trade = (
        '{"stream":"trade.SOL_USDC","data":{"e":"trade","E":1,"s":"SOL_USDC",'
        '"p":"1.5","q":"2","b":"1","a":"2","t":7,"T":1,"m":true}}'
    )
    with Recorder(path, ["account.orderUpdate", "trade.SOL_USDC"]) as recorder:
        recorder.frame(echoed, 10, json_object=True)
        recorder.frame(trade, 11, json_object=True)
    text = path.read_bytes()
    assert b"U0lHTkFUVVJF" not in text and b"S0VZ" not in text
    assert b'"signature":"[redacted]"' in text
    assert b'"code":4003' in text
    lines = list(iter_lines(path))
    records = [r for line in lines[1:] for r in Replayer().feed(line)]
    assert records[-1].data.t == 7 and records[-1].recv_us == 11


def test_lines_are_the_same_whatever_the_read_size_and_skip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.jsonl.gz"
    lines = [
        b'{"recv_us":%d,"stream":"trade.X","data":{"n":"%s"}}\n' % (i, b"x" * i)
        for i in range(40)
    ]
    with gzip.open(path, "wb") as fh:
        fh.write(b"".join(lines))
    for read_bytes in (7, 64, 1 << 20):  # lines split across reads, or one read
        monkeypatch.setattr(recording, "_READ_BYTES", read_bytes)
        for skip in (0, 1, 5, 39, 40, 45):
            assert list(iter_lines(path, skip)) == lines[skip:]
            blocks = list(RecordingReader(path, skip).blocks())
            assert all(blocks)
            assert [line for block in blocks for line in block] == lines[skip:]


def test_feeding_lines_in_slices_equals_feeding_each() -> None:
    lines = list(iter_lines(SESSION))
    one_by_one = Replayer()
    each = [r for line in lines for r in one_by_one.feed(line)]
    for size in (1, 3, 500, len(lines)):
        sliced = Replayer()
        records = [
            r
            for at in range(0, len(lines), size)
            for r in sliced.feed_lines(lines[at : at + size])
        ]
        assert records == each
        assert sliced.lines == len(lines)


def test_frame_lines_are_told_from_control_lines_in_both_layouts() -> None:
    frames = [
        b'{"recv_us":1,"stream":"trade.X","data":{"e":"trade"}}\n',
        b'{"recv_us":1,"data":{"a":[["1","2"]],"e":"depth"},"stream":"depth.X"}\n',
    ]
    control = [
        b'{"recorder":"bpx-flows","version":1,"streams":["trade.X"],"started_us":1}\n',
        b'{"recv_us":2,"rest":"/api/v1/depth","for_stream":"depth.X","data":{}}\n',
        b'{"recv_us":3,"raw":"{\\"stream\\":\\"trade.X\\"}"}\n',
        b'{"recv_us":4,"id":null,"error":{"code":4006,"message":"Invalid stream"}}\n',
        b'{"recv_us":5,"disconnect":"server_close"}\n',
    ]
    assert [is_frame_line(line) for line in frames + control] == [True] * 2 + [
        False
    ] * 5
