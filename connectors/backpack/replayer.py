"""Turns recording lines back into the records the live connection emitted, sans I/O.

The same decoder and the same ``BookRouter`` run over the same inputs in the same
order (frames, the REST answers where they arrived, the disconnects), and every REST
answer goes through ``fetches.records_of`` as it did live, so a replay reproduces
the live record stream exactly.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..errors import ProtocolError
from .backfill import TradeBackfill
from .books import BookRouter
from .booksync import ResyncReason
from .decode import BadFrame, Decoded, FrameDecoder
from .fetches import DEPTH_PATH, Answer, records_of
from .wire import Depth, Frame, ServerError

__all__ = [
    "Replayer",
    "unsplice",
]


class _Line(msgspec.Struct):
    """The control keys of a recording line (frame lines decode as frames)."""

    recv_us: int = 0
    rest: str | None = None
    for_stream: str | None = None
    data: msgspec.Raw = msgspec.Raw()
    params: dict[str, str] | None = None
    backfill: msgspec.Raw = msgspec.Raw()  # empty: not a backfill line
    raw: str | None = None
    disconnect: str | None = None
    recorder: str | None = None
    clock: bool = False  # a time marker of a topic's default partition


_LINE = msgspec.json.Decoder(_Line)
_BACKFILL = msgspec.json.Decoder(TradeBackfill)
Replayed = Frame[Any] | BadFrame | ServerError | Any


class Replayer:
    """Feed it recording lines; it returns the records, as the live source would."""

    def __init__(self) -> None:
        self._decoder = FrameDecoder()
        self.books = BookRouter(None)
        self.lines = 0
        self.bad_lines = 0

    def feed(self, line: bytes) -> list[Replayed]:
        """Records produced by one line (often exactly one)."""
        return self.feed_lines([line])

    def feed_lines(self, lines: list[bytes]) -> list[Replayed]:
        """Records produced by several lines, in order: the same as feeding each."""
        self.lines += len(lines)
        out: list[Replayed] = []
        append = out.append
        syncs = self.books.syncs
        # Frame lines are the bulk: decode them directly, control lines take a detour.
        # A live book's next diff in sequence passes as is (as in the live connection).
        for line, decoded in zip(lines, self._decoder.decode_all(lines), strict=True):
            if type(decoded) is Frame:
                data = decoded.data
                if type(data) is not Depth:
                    append(decoded)
                    continue
                sync = syncs.get(decoded.stream)
                if sync is not None and sync.continues(data):
                    append(decoded)
                    continue
                out.extend(self._route(decoded))
            elif type(decoded) is ServerError:
                append(decoded)
            else:
                out.extend(self._control(line, decoded))
        return out

    def _control(self, line: bytes, decoded: Decoded) -> list[Replayed]:
        """A line that is not a frame: header, REST answer, disconnect, raw text."""
        try:
            control = _LINE.decode(line)
        except msgspec.DecodeError:
            self.bad_lines += 1
            return [decoded]
        if control.raw is not None:
            return self._route(self._decoder.decode(control.raw, control.recv_us))
        if control.rest is not None:
            return self._answer(control) if control.for_stream else []
        if control.backfill:
            try:
                return [_BACKFILL.decode(control.backfill)]
            except msgspec.DecodeError:
                self.bad_lines += 1
                return []
        if control.disconnect is not None:
            return list(self.books.reset_all(ResyncReason.RECONNECT, control.recv_us))
        if control.recorder is not None or control.clock:
            return []
        # A frame that did not decode live: rebuild its exact text for the same record.
        return [self._decoder.decode(unsplice(line), control.recv_us)]

    def _answer(self, control: _Line) -> list[Replayed]:
        """A REST answer: the records ``records_of`` gave live for it."""
        assert control.rest is not None
        assert control.for_stream is not None
        answer = Answer(
            control.for_stream,
            control.rest,
            control.params or {},
            bytes(control.data),
            control.recv_us,
        )
        try:
            out: list[Replayed] = list(records_of(answer, self.books))
        except ProtocolError:
            self.bad_lines += 1
            return []
        if control.rest == DEPTH_PATH:
            self.books.start_fetches()  # the next book waiting, as live
        return out

    def _route(self, decoded: Decoded) -> list[Replayed]:
        if isinstance(decoded, Frame):
            records = self.books.on_frame(decoded)
            if records is not None:
                if self.books.wanting:
                    self.books.start_fetches()
                return list(records)
        return [decoded]


def unsplice(line: bytes) -> bytes:
    """A frame line without its ``{"recv_us":N,`` prefix: the frame as received."""
    head, sep, rest = line.rstrip(b"\n").partition(b",")
    if not head.startswith(b'{"recv_us":'):
        return line
    return b"{" + rest if sep else b"{}"
