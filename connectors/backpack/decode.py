"""Decode raw frames, once, into typed records; bad input becomes a ``BadFrame``.

The fast path decodes the envelope and a public event in a single msgspec pass (a tagged
union on ``e``). Private frames, error frames and broken frames take a slower second
look, which is fine: they are rare.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec

from ..errors import ConfigError
from .limits import MAX_TIME_US, problem, sane
from .streams import Channel, parse_stream
from .wire import (
    BookTicker,
    Depth,
    Frame,
    Kline,
    Liquidation,
    MarkPrice,
    OpenInterest,
    OrderUpdate,
    PositionUpdate,
    PublicEvent,
    RfqUpdate,
    ServerError,
    Ticker,
    Trade,
)

__all__ = ["BadFrame", "BadReason", "Decoded", "FrameDecoder"]

_RAW_PREFIX_CHARS = 200


class BadReason(enum.StrEnum):
    """Why a frame was dead-lettered; a bounded label set for metrics."""

    NOT_JSON = "not_json"
    NOT_A_FRAME = "not_a_frame"  # JSON, but neither {stream, data} nor {error}
    UNKNOWN_STREAM = "unknown_stream"
    WRONG_EVENT = "wrong_event"  # data.e does not belong to the stream's channel
    INVALID_FIELD = "invalid_field"  # missing or ill-typed field
    OUT_OF_RANGE = "out_of_range"  # a value outside the limits (limits.py)
    TOO_DEEP = "too_deep"  # JSON nested deeper than the decoder's stack
    NOT_UTF8 = "not_utf8"  # text that is not UTF-8
    BINARY = "binary"  # a binary WebSocket frame (the exchange sends text)


class BadFrame(msgspec.Struct, frozen=True):
    """A frame that could not be decoded: counted and routed to a dead-letter path.

    Attributes:
        stream: the frame's stream name when it could be read, else ``None``.
        reason: the class of problem (a metric label).
        detail: the decoder's message, e.g. "Expected `int`, got `str`".
        path: JSON path of the offending field, e.g. ``$.data.t``, when known.
        raw_prefix: the first 200 characters of the frame, for the log.
        recv_us: receive time, microseconds since the epoch (0 if unknown).
    """

    stream: str | None
    reason: BadReason
    detail: str
    path: str | None
    raw_prefix: str
    recv_us: int = 0


Decoded = Frame[Any] | ServerError | BadFrame

_PUBLIC_TYPES: dict[Channel, type[PublicEvent]] = {
    Channel.BOOK_TICKER: BookTicker,
    Channel.DEPTH: Depth,
    Channel.KLINE: Kline,
    Channel.LIQUIDATION: Liquidation,
    Channel.MARK_PRICE: MarkPrice,
    Channel.OPEN_INTEREST: OpenInterest,
    Channel.TICKER: Ticker,
    Channel.TRADE: Trade,
}


class _Probe(msgspec.Struct):
    """Just enough of any JSON object to tell what kind of frame it is."""

    stream: str | None = None
    data: msgspec.Raw = msgspec.Raw()  # empty when absent
    error: msgspec.Raw = msgspec.Raw()


# strict=False: integers arrive as numbers or numeric strings (WIRE-NOTES.md).
_PUBLIC = msgspec.json.Decoder(Frame[PublicEvent], strict=False)
_PRIVATE: dict[Channel, msgspec.json.Decoder[Any]] = {
    Channel.ORDER_UPDATE: msgspec.json.Decoder(Frame[OrderUpdate], strict=False),
    Channel.POSITION_UPDATE: msgspec.json.Decoder(Frame[PositionUpdate], strict=False),
    Channel.RFQ_UPDATE: msgspec.json.Decoder(Frame[RfqUpdate], strict=False),
}
_PROBE = msgspec.json.Decoder(_Probe)
_ERROR = msgspec.json.Decoder(ServerError, strict=False)


def _split_path(message: str) -> tuple[str, str | None]:
    detail, sep, path = message.partition(" - at `")
    return (detail, path.rstrip("`")) if sep else (message, None)


class FrameDecoder:
    """Turns one raw text frame into a ``Frame``, a ``ServerError`` or a ``BadFrame``.

    Never raises on input. Keeps a per-stream cache of the expected channel, so the name
    of each stream is parsed once.
    """

    def __init__(self) -> None:
        self._channels: dict[str, Channel | None] = {}

    def decode(self, raw: str | bytes, recv_us: int = 0) -> Decoded:
        """Decode a frame; ``recv_us`` is the receive time in microseconds.

        Never raises, for any input: what cannot be decoded is a ``BadFrame``.
        """
        try:
            frame = _PUBLIC.decode(raw)
        except msgspec.DecodeError:
            return self._second_look(raw, recv_us)
        except (RecursionError, UnicodeError, ValueError, TypeError) as exc:
            return self._broken(raw, recv_us, exc)
        channel = self._channels.get(frame.stream)
        if channel is None or _PUBLIC_TYPES.get(channel) is not type(frame.data):
            return self._checked(raw, frame, recv_us)  # unseen or wrong: the full check
        data = frame.data
        # The range policy (limits.py); depth, the most frequent, tested inline.
        if (
            not (0 <= data.T < MAX_TIME_US and 0 <= data.E < MAX_TIME_US)
            if type(data) is Depth
            else not sane(data)
        ):
            bad = problem(data) or "out of range"
            return self._bad(raw, frame.stream, BadReason.OUT_OF_RANGE, recv_us, bad)
        if recv_us and not frame.recv_us:
            # Set in place: the frame was just built and nobody else holds it.
            msgspec.structs.force_setattr(frame, "recv_us", recv_us)
        return frame

    def decode_all(self, raws: list[bytes]) -> list[Decoded]:
        """``decode`` of each (``recv_us`` as the text has it), the common case inline.

        For recordings, whose lines carry their receive time: one call per block
        instead of one per line.
        """
        out: list[Decoded] = []
        append = out.append
        public = _PUBLIC.decode
        channels = self._channels
        for raw in raws:
            try:
                frame = public(raw)
            except msgspec.DecodeError:
                append(self._second_look(raw, 0))
                continue
            except (RecursionError, UnicodeError, ValueError, TypeError) as exc:
                append(self._broken(raw, 0, exc))
                continue
            channel = channels.get(frame.stream)
            if channel is not None and _PUBLIC_TYPES.get(channel) is type(frame.data):
                data = frame.data
                if (
                    0 <= data.T < MAX_TIME_US and 0 <= data.E < MAX_TIME_US
                    if type(data) is Depth
                    else sane(data)
                ):
                    append(frame)
                else:
                    bad = problem(data) or "out of range"
                    reason = BadReason.OUT_OF_RANGE
                    append(self._bad(raw, frame.stream, reason, 0, bad))
            else:
                append(self._checked(raw, frame, 0))  # unseen or wrong: the full check
        return out

    def _checked(self, raw: str | bytes, frame: Frame[Any], recv_us: int) -> Decoded:
        bad = problem(frame.data)
        if bad is not None:
            return self._bad(raw, frame.stream, BadReason.OUT_OF_RANGE, recv_us, bad)
        channel = self._channel(frame.stream)
        if channel is None:
            return self._bad(raw, frame.stream, BadReason.UNKNOWN_STREAM, recv_us)
        if _PUBLIC_TYPES.get(channel) is not type(frame.data):
            detail = f"{type(frame.data).__name__} event on a {channel.value} stream"
            return self._bad(raw, frame.stream, BadReason.WRONG_EVENT, recv_us, detail)
        if recv_us and not frame.recv_us:
            # Set in place: the frame was just built and nobody else holds it.
            msgspec.structs.force_setattr(frame, "recv_us", recv_us)
        return frame

    def _channel(self, stream: str) -> Channel | None:
        try:
            return self._channels[stream]
        except KeyError:
            pass
        try:
            channel: Channel | None = parse_stream(stream).channel
        except ConfigError:
            channel = None
        if len(self._channels) < 100_000:  # bounded: stream names come from the peer
            self._channels[stream] = channel
        return channel

    def _broken(self, raw: str | bytes, recv_us: int, exc: BaseException) -> BadFrame:
        reason = (
            BadReason.TOO_DEEP
            if isinstance(exc, RecursionError)
            else BadReason.NOT_UTF8
            if isinstance(exc, UnicodeError) or "UTF-8" in str(exc)
            else BadReason.NOT_JSON
        )
        return self._bad(raw, None, reason, recv_us, str(exc)[:200])

    def _second_look(self, raw: str | bytes, recv_us: int) -> Decoded:
        try:
            return self._second_look_unsafe(raw, recv_us)
        except (msgspec.DecodeError, RecursionError, UnicodeError, ValueError) as exc:
            return self._broken(raw, recv_us, exc)

    def _second_look_unsafe(self, raw: str | bytes, recv_us: int) -> Decoded:
        try:
            probe = _PROBE.decode(raw)
        except msgspec.DecodeError as exc:
            reason = (
                BadReason.NOT_A_FRAME
                if isinstance(exc, msgspec.ValidationError)
                else BadReason.NOT_JSON
            )
            if "UTF-8" in str(exc):
                reason = BadReason.NOT_UTF8
            elif "depth" in str(exc) and "nest" in str(exc):
                reason = BadReason.TOO_DEEP
            return self._bad(raw, None, reason, recv_us, str(exc))
        if probe.error and probe.stream is None:
            try:
                err = _ERROR.decode(raw)
            except msgspec.DecodeError as exc:
                return self._bad(raw, None, BadReason.NOT_A_FRAME, recv_us, str(exc))
            return msgspec.structs.replace(err, recv_us=recv_us) if recv_us else err
        if probe.stream is None or not probe.data:
            detail = "expected {stream, data} or {error}"
            return self._bad(raw, probe.stream, BadReason.NOT_A_FRAME, recv_us, detail)
        channel = self._channel(probe.stream)
        if channel is None:
            return self._bad(raw, probe.stream, BadReason.UNKNOWN_STREAM, recv_us)
        decoder = _PRIVATE.get(channel, _PUBLIC)
        try:
            frame: Frame[Any] = decoder.decode(raw)
        except msgspec.ValidationError as exc:
            reason = BadReason.INVALID_FIELD
            if channel in _PUBLIC_TYPES and "`$.data.e`" in str(exc):
                reason = BadReason.WRONG_EVENT
            return self._bad(raw, probe.stream, reason, recv_us, str(exc))
        bad = problem(frame.data)
        if bad is not None:
            return self._bad(raw, probe.stream, BadReason.OUT_OF_RANGE, recv_us, bad)
        if recv_us and not frame.recv_us:
            # Set in place: the frame was just built and nobody else holds it.
            msgspec.structs.force_setattr(frame, "recv_us", recv_us)
        return frame

    @staticmethod
    def _bad(
        raw: str | bytes,
        stream: str | None,
        reason: BadReason,
        recv_us: int,
        message: str = "",
    ) -> BadFrame:
        detail, path = _split_path(message)
        if isinstance(raw, str):
            text = raw.encode("utf-8", "replace").decode("utf-8", "replace")
        else:
            text = raw.decode("utf-8", "replace")
        return BadFrame(
            stream=stream,
            reason=reason,
            detail=detail or reason.value,
            path=path,
            raw_prefix=text[:_RAW_PREFIX_CHARS],
            recv_us=recv_us,
        )
