"""Open interest seeded from REST: ``GET /api/v1/openInterest`` rows as stream frames.

The ``openInterest.<symbol>`` stream sends once a minute, so a flow that just started
knows no open interest for up to 60 s. The connection asks REST once per connect and
turns the row into the frame the stream would have sent (event time: the row's own
timestamp), so every step downstream treats it like any other; a later stream frame
supersedes it (steps keep the newest by event time). Recordings keep the REST answer,
and a replay turns it into the same frame. Pure: bytes in, frames out.
"""

from __future__ import annotations

import msgspec

from bpx_flows.connectors.backpack.limits import sane
from bpx_flows.connectors.backpack.wire import Frame, OpenInterest, OpenInterestRow

__all__ = ["OPEN_INTEREST_PATH", "open_interest_frames"]

OPEN_INTEREST_PATH = "/api/v1/openInterest"
_ROWS = msgspec.json.Decoder(list[OpenInterestRow])
_MS = 1_000


def open_interest_frames(
    stream: str, symbol: str, body: bytes, recv_us: int
) -> list[Frame[OpenInterest]]:
    """The frame of ``stream`` that ``body`` (the REST answer) stands for.

    Nothing for an answer that does not decode, names another market, has no open
    interest, or carries values outside the range policy (``limits``).
    """
    try:
        rows = _ROWS.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return []
    out: list[Frame[OpenInterest]] = []
    for row in rows:
        if row.symbol != symbol or row.openInterest is None:
            continue
        event = OpenInterest(E=row.timestamp * _MS, o=row.openInterest, s=symbol)
        if sane(event):
            out.append(Frame(stream, event, recv_us))
    return out[-1:]  # one row per market; the last if the answer repeats it
