"""A lean asyncio WebSocket client on websockets' sans-I/O ``ClientProtocol``.

Why not ``websockets.connect``: its message queue (assemble, join, decode to ``str``,
hand over through an awaitable ``recv``) costs about as much per frame as everything
else together. A feed client only needs each text frame's bytes, as they arrive, so
this client calls ``on_text(data, recv_us)`` straight from ``data_received`` and leaves
frame parsing, pings/pongs and the closing handshake to websockets' protocol core.
UTF-8 is validated by the JSON decoder that reads the bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ssl
import time
from collections.abc import Callable

from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

__all__ = ["ClosedInfo", "HandshakeError", "WsClient", "open_client"]

OnText = Callable[[bytes, int], None]
OnBinary = Callable[[int, int], None]  # (size in bytes, recv_us)

_FIN_TEXT = 0x81  # FIN set, no reserved bits, opcode 1 (text)
_MAX_HEAD = 64 << 10  # an upgrade answer's head, bytes


class _Mode(enum.Enum):
    """Who parses the bytes that arrive."""

    HANDSHAKE = "handshake"  # the HTTP answer, then FRAMED or RAW
    FRAMED = "framed"  # frames delimited here (the fast path)
    RAW = "raw"  # websockets parses everything (compression, closing, no fast path)


def _frame_size(data: bytes) -> int:
    """The whole size of the frame ``data`` starts with (0: header incomplete)."""
    if len(data) < 2:
        return 0
    length = data[1] & 0x7F
    if length < 126:
        return 2 + length
    header = 4 if length == 126 else 10
    if len(data) < header:
        return 0
    return header + int.from_bytes(data[2:header])


class HandshakeError(ConnectionError):
    """The server did not accept the WebSocket upgrade.

    Attributes:
        status: the HTTP status the server answered with, if any.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ClosedInfo:
    """How a connection ended: close code/reason (if a Close frame came) and error."""

    def __init__(
        self, code: int | None, reason: str, error: BaseException | None
    ) -> None:
        self.code = code
        self.reason = reason
        self.error = error


class WsClient(asyncio.Protocol):
    """One client connection; create it with ``open_client``."""

    def __init__(
        self,
        protocol: ClientProtocol,
        on_text: OnText,
        on_binary: OnBinary | None = None,
        max_size: int = 16 << 20,
        fast: bool = True,
    ) -> None:
        self._protocol = protocol
        self._on_text = on_text
        self._on_binary = on_binary
        self._transport: asyncio.Transport | None = None
        self._fragments: list[bytes] = []
        self._fragment_text = True  # the kind of the message being reassembled
        self._max_size = max_size
        self._fast_allowed = fast
        self._mode = _Mode.HANDSHAKE
        self._head = b""  # the upgrade's answer, until it is whole
        self._partial: list[bytes] = []  # an incomplete frame's bytes (fast path)
        self._partial_size = 0
        self._partial_need = 0  # its whole size, once its header is known
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[ClosedInfo] = (
            asyncio.get_running_loop().create_future()
        )
        self.last_pong_ns = time.monotonic_ns()
        self.bytes_received = 0

    # asyncio.Protocol callbacks.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send the upgrade request."""
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._protocol.send_request(self._protocol.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        """Hand each complete text frame to ``on_text``; the rest to websockets."""
        self.bytes_received += len(data)
        mode = self._mode
        if mode is _Mode.FRAMED:
            self._frames(data)
        elif mode is _Mode.RAW:
            self._protocol_data(data)
        else:
            self._handshake_bytes(data)

    def _handshake_bytes(self, data: bytes) -> None:
        """Until the upgrade's answer is whole: websockets gets exactly its bytes."""
        head = self._head + data
        end = head.find(b"\r\n\r\n")
        if end < 0:
            if len(head) > _MAX_HEAD:
                self._mode = _Mode.RAW  # websockets refuses an endless head
                self._protocol_data(head)
            else:
                self._head = head
            return
        self._head = b""
        rest = head[end + 4 :]
        self._protocol_data(head[: end + 4])
        protocol = self._protocol
        if (
            self._fast_allowed
            and protocol.state is State.OPEN
            and not protocol.extensions  # permessage-deflate transforms frames
        ):
            self._mode = _Mode.FRAMED
            if rest:
                self._frames(rest)
        else:
            self._mode = _Mode.RAW
            if rest:
                self._protocol_data(rest)

    def _frames(self, data: bytes) -> None:
        """The open connection's hot path: frames delimited here, text sliced out.

        A server's frames are unmasked, so an unfragmented, uncompressed text frame
        is a header and the payload: sliced out and handed over with no per-frame
        objects. Every other frame (control, fragment, binary, masked, reserved
        bits, a text frame inside a fragmented message) goes to websockets'
        protocol as its exact bytes, so its parser always starts at a frame's first
        byte; it checks, answers (pongs, the closing handshake) and reports them as
        always. Once the protocol is no longer plainly open (a Close, a failure) or
        a frame is over ``max_size``, every later byte goes to websockets as is.
        """
        parts = self._partial
        if parts:
            self._partial_size += len(data)
            parts.append(data)
            if self._partial_size < self._partial_need:
                return  # a large frame still arriving: no copying until it is whole
            data = b"".join(parts)
            parts.clear()
        recv_us = time.time_ns() // 1000
        on_text = self._on_text
        max_size = self._max_size
        protocol = self._protocol
        size = len(data)
        at = 0
        while at + 2 <= size:
            first = data[at]
            length = data[at + 1]
            start = at + 2
            if length >= 126:  # masked (>= 128) or an extended length
                if length == 126:
                    start = at + 4
                elif length == 127:
                    start = at + 10
                else:  # masked: websockets refuses it
                    self._go_raw(data[at:])
                    return
                if start > size:
                    break  # the header itself is incomplete
                length = int.from_bytes(data[at + 2 : start])
            if length > max_size:  # never buffered: websockets refuses it
                self._go_raw(data[at:])
                return
            end = start + length
            if end > size:
                break
            if first == _FIN_TEXT and protocol.current_size is None:
                on_text(data[start:end], recv_us)
            else:
                self._protocol_data(data[at:end])
                if protocol.state is not State.OPEN:
                    self._go_raw(data[end:])
                    return
            at = end
        if at < size:
            rest = data[at:]
            self._partial.append(rest)
            self._partial_size = len(rest)
            self._partial_need = _frame_size(rest)

    def _go_raw(self, data: bytes) -> None:
        self._mode = _Mode.RAW
        self._protocol_data(data)

    def _protocol_data(self, data: bytes) -> None:
        """Bytes for websockets' protocol: the handshake, control frames, the rest."""
        protocol = self._protocol
        if data:
            protocol.receive_data(data)
        recv_us = time.time_ns() // 1000
        on_text = self._on_text
        for event in protocol.events_received():
            if type(event) is Frame:
                opcode = event.opcode
                if opcode is Opcode.TEXT and event.fin:
                    on_text(event.data, recv_us)  # type: ignore[arg-type]  # bytes
                elif opcode is Opcode.PONG:
                    self.last_pong_ns = time.monotonic_ns()
                elif opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                    self._fragment_text = opcode is Opcode.TEXT
                    self._fragment(event, recv_us)
                elif opcode is Opcode.CONT:
                    self._fragment(event, recv_us)
            elif isinstance(event, Response):
                self._handshake_done(event)
        self._flush()
        if protocol.state is State.CLOSED and self._transport is not None:
            self._transport.close()

    def eof_received(self) -> bool | None:
        """The server half-closed: let the protocol finish the closing handshake."""
        self._protocol.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        """Resolve ``closed`` (and ``opened`` if the handshake never finished)."""
        protocol = self._protocol
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("connection closed"))
        if not self.closed.done():
            code = protocol.close_code
            self.closed.set_result(ClosedInfo(code, protocol.close_reason or "", exc))

    def pause_writing(self) -> None:
        """Ignored: we send a few control frames, never a stream."""

    def resume_writing(self) -> None:
        """Ignored, see ``pause_writing``."""

    # Public methods.

    def send_text(self, text: str) -> bool:
        """Send one text frame; ``False`` if the connection is no longer open."""
        if self._protocol.state is not State.OPEN:
            return False
        self._protocol.send_text(text.encode())
        self._flush()
        return True

    def ping(self) -> None:
        """Send a protocol Ping; ``last_pong_ns`` moves when the Pong arrives."""
        if self._protocol.state is not State.OPEN:
            return
        self._protocol.send_ping(b"bpx")
        self._flush()

    def pause_reading(self) -> None:
        """Stop reading the socket: TCP pushes back on the server."""
        if self._transport is not None and self._transport.is_reading():
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        """Read again after ``pause_reading``."""
        if self._transport is not None and not self._transport.is_reading():
            self._transport.resume_reading()

    async def close(self, timeout_s: float = 2.0) -> None:
        """Closing handshake (1000); the TCP link is dropped after ``timeout_s``."""
        if self._protocol.state is State.OPEN:
            self._protocol.send_close(1000)
            self._flush()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.closed), timeout_s)
        self.abort()

    def abort(self) -> None:
        """Drop the TCP connection at once (no closing handshake)."""
        if self._transport is not None:
            self._transport.abort()

    # Private helpers.

    def _flush(self) -> None:
        data = self._protocol.data_to_send()
        if data and self._transport is not None:
            for chunk in data:
                if chunk:
                    self._transport.write(chunk)
                elif self._transport.can_write_eof():
                    self._transport.write_eof()

    def _fragment(self, frame: Frame, recv_us: int) -> None:
        self._fragments.append(bytes(frame.data))
        if frame.fin:
            message = b"".join(self._fragments)
            self._fragments.clear()
            if self._fragment_text:
                self._on_text(message, recv_us)
            elif self._on_binary is not None:
                self._on_binary(len(message), recv_us)

    def _handshake_done(self, response: Response) -> None:
        error = self._protocol.handshake_exc
        if error is None:
            self.opened.set_result(None)
            return
        status = response.status_code
        why = f" ({str(error)[:200]})" if status == 101 else ""  # a bad 101 answer
        self.opened.set_exception(
            HandshakeError(f"WebSocket upgrade refused: HTTP {status}{why}", status)
        )


async def open_client(
    url: str,
    on_text: OnText,
    open_timeout_s: float = 10.0,
    max_size: int = 16 << 20,
    compression: bool = False,
    on_binary: OnBinary | None = None,
    fast_path: bool = True,
) -> WsClient:
    """Connect and complete the handshake.

    ``compression`` offers permessage-deflate (less bandwidth, more CPU: every
    frame then goes through websockets' parser and inflater). ``fast_path=False``
    parses every frame with websockets (for comparison and tests).

    Raises:
        OSError: the host is unreachable or refused the connection.
        TimeoutError: no handshake within ``open_timeout_s``.
        HandshakeError: the server answered the upgrade with another status
            (a redirect included: it is never followed).
    """
    uri = parse_uri(url)
    extensions = [ClientPerMessageDeflateFactory()] if compression else None
    protocol = ClientProtocol(uri, max_size=max_size, extensions=extensions)
    loop = asyncio.get_running_loop()
    context = ssl.create_default_context() if uri.secure else None

    async def connect() -> WsClient:
        _, client = await loop.create_connection(
            lambda: WsClient(protocol, on_text, on_binary, max_size, fast_path),
            uri.host,
            uri.port,
            ssl=context,
            server_hostname=uri.host if context else None,
        )
        try:
            await client.opened
        except BaseException:
            # A refused upgrade (any status, a redirect), a reset or the deadline:
            # the socket is ours to close, or every retry would leak one.
            client.abort()
            raise
        return client

    return await asyncio.wait_for(connect(), open_timeout_s)
