"""The recorder keeps frames exact, except signatures, which it never writes."""

from __future__ import annotations

from pathlib import Path

from connectors.backpack.replayer import Replayer
from connectors.recording import Recorder, iter_lines


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
