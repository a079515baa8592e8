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

__all__ = ["OPEN_INTEREST_PATH", "open_interest_frames", "open_interest_rows"]

OPEN_INTEREST_PATH = "/api/v1/openInterest"
_ROWS = msgspec.json.Decoder(list[OpenInterestRow])
_ROW = msgspec.json.Encoder()
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


def open_interest_rows(
    streams: list[tuple[str, str]], body: bytes, recv_us: int
) -> dict[str, tuple[bytes, list[Frame[OpenInterest]]]]:
    """An answer for every market, split by stream: ``{stream: (its row, frames)}``.

    ``streams`` are ``(stream name, symbol)``. Each stream gets the answer's row of
    its market, as a one-row answer (what the recording keeps), and its frame;
    streams whose market the answer lacks, or whose row fails the checks of
    ``open_interest_frames``, get nothing.
    """
    try:
        rows = _ROWS.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return {}
    by_symbol = {row.symbol: row for row in rows}
    out: dict[str, tuple[bytes, list[Frame[OpenInterest]]]] = {}
    for stream, symbol in streams:
        row = by_symbol.get(symbol)
        if row is None:
            continue
        one = _ROW.encode([row])
        frames = open_interest_frames(stream, symbol, one, recv_us)
        if frames:
            out[stream] = (one, frames)
    return out
