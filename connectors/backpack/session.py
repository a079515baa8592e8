"""The sans-I/O Backpack session: frames in, typed events out, control frames to send.

No sockets, no asyncio, no clock: the caller passes times in. One ``Session`` per
WebSocket connection. It remembers what is subscribed, so after a reconnect
``connected()`` queues everything again, private streams re-signed with a fresh time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import msgspec

from ..errors import ConfigError
from .decode import BadFrame, Decoded, FrameDecoder
from .signing import DEFAULT_WINDOW_MS, Credentials
from .streams import StreamName
from .wire import Frame, ServerError

__all__ = ["OTHER_STREAM", "Session", "SessionStats", "control_frame"]


class _Control(msgspec.Struct, omit_defaults=True):
    method: str
    params: list[str]
    signature: list[str] | None = None


_encode_control = msgspec.json.Encoder().encode


def control_frame(
    method: str, streams: Iterable[StreamName | str], signature: list[str] | None = None
) -> str:
    """A ``SUBSCRIBE``/``UNSUBSCRIBE`` frame as text."""
    body = _Control(method, [str(s) for s in streams], signature)
    return _encode_control(body).decode()


OTHER_STREAM = "other"  # the label of frames on streams we did not subscribe


@dataclass
class SessionStats:
    """Counters of one session; exported by the metrics layer.

    Attributes:
        frames: data frames decoded, per subscribed stream; frames on streams we
            never subscribed count under ``OTHER_STREAM`` (labels stay bounded).
        bytes_received: payload bytes received (text length of every frame).
        bad_frames: dead-lettered frames, per reason.
        server_errors: error frames, per error code (the first 20 codes; the rest
            count under -1).
    """

    frames: Counter[str] = field(default_factory=Counter)
    bytes_received: int = 0
    bad_frames: Counter[str] = field(default_factory=Counter)
    server_errors: Counter[int] = field(default_factory=Counter)


class Session:
    """Protocol state of one connection.

    Args:
        streams: what to subscribe on connect.
        credentials: needed when any stream is private (``account.*``).
        window_ms: validity window of subscription signatures, milliseconds.

    Raises:
        ConfigError: a private stream without credentials.
    """

    def __init__(
        self,
        streams: Sequence[StreamName],
        credentials: Credentials | None = None,
        window_ms: int = DEFAULT_WINDOW_MS,
    ) -> None:
        self._credentials = credentials
        self._window_ms = window_ms
        self._subscribed: dict[str, StreamName] = {}
        self._outgoing: list[str] = []
        self._events: list[Decoded] = []
        self._decoder = FrameDecoder()
        self.stats = SessionStats()
        self._check_private(streams)
        self._subscribed.update((str(s), s) for s in streams)

    @property
    def streams(self) -> list[StreamName]:
        """The streams this session keeps subscribed."""
        return list(self._subscribed.values())

    # Control: what to send.

    def connected(self, now_ms: int) -> None:
        """A (re)connection is open: queue subscriptions for every stream.

        Args:
            now_ms: current time, Unix milliseconds, for the signature.
        """
        self._queue_subscribe(list(self._subscribed.values()), now_ms)

    def subscribe(self, streams: Sequence[StreamName], now_ms: int) -> None:
        """Add streams; queues their SUBSCRIBE frames."""
        self._check_private(streams)
        new = [s for s in streams if str(s) not in self._subscribed]
        self._subscribed.update((str(s), s) for s in new)
        self._queue_subscribe(new, now_ms)

    def unsubscribe(self, streams: Sequence[StreamName]) -> None:
        """Drop streams; queues one UNSUBSCRIBE frame (never signed, as documented)."""
        gone = [s for s in streams if self._subscribed.pop(str(s), None) is not None]
        if gone:
            self._outgoing.append(control_frame("UNSUBSCRIBE", gone))

    def data_to_send(self) -> list[str]:
        """Frames to write to the socket, oldest first; clears the queue."""
        out, self._outgoing = self._outgoing, []
        return out

    # Data: what arrived.

    def receive_text(self, data: str | bytes, recv_us: int) -> None:
        """Feed one received frame; its record is queued for ``events_received``.

        Args:
            data: the frame's text as received.
            recv_us: receive time, microseconds since the epoch.
        """
        self._events.append(self.receive(data, recv_us))

    def receive(self, data: str | bytes, recv_us: int) -> Decoded:
        """Decode and count one frame, returning its record (the socket loop's path)."""
        stats = self.stats
        stats.bytes_received += len(data)
        decoded = self._decoder.decode(data, recv_us)
        if type(decoded) is Frame:
            stream = decoded.stream
            stats.frames[stream if stream in self._subscribed else OTHER_STREAM] += 1
        elif isinstance(decoded, BadFrame):
            stats.bad_frames[decoded.reason.value] += 1
        elif isinstance(decoded, ServerError):
            code = decoded.error.code
            errors = stats.server_errors
            errors[code if code in errors or len(errors) < 20 else -1] += 1
        return decoded

    def count_bad(self, reason: str) -> None:
        """Count a frame dropped before decoding (a binary frame)."""
        self.stats.bad_frames[reason] += 1

    def events_received(self) -> list[Decoded]:
        """Decoded, bad and error frames in arrival order; clears them."""
        out, self._events = self._events, []
        return out

    # Private helpers.

    def _check_private(self, streams: Sequence[StreamName]) -> None:
        if self._credentials is None and any(s.private for s in streams):
            names = ", ".join(str(s) for s in streams if s.private)
            msg = (
                f"{names}: account streams need an API key; set BPX_API_SECRET "
                "(base64 ED25519 secret) or BPX_API_SECRET_FILE"
            )
            raise ConfigError(msg)

    def _queue_subscribe(self, streams: Sequence[StreamName], now_ms: int) -> None:
        public = [s for s in streams if not s.private]
        private = [s for s in streams if s.private]
        if public:
            self._outgoing.append(control_frame("SUBSCRIBE", public))
        if private:
            assert self._credentials is not None  # checked on the way in
            signature = self._credentials.sign_subscribe(now_ms, self._window_ms)
            self._outgoing.append(control_frame("SUBSCRIBE", private, signature))
