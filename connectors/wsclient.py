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
    ) -> None:
        self._protocol = protocol
        self._on_text = on_text
        self._on_binary = on_binary
        self._transport: asyncio.Transport | None = None
        self._fragments: list[bytes] = []
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
        """Parse frames; hand text frames to ``on_text``; answer what needs answers."""
        protocol = self._protocol
        self.bytes_received += len(data)
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
                elif opcode is Opcode.TEXT or opcode is Opcode.CONT:
                    self._fragment(event, recv_us)
                elif opcode is Opcode.BINARY and self._on_binary is not None:
                    self._on_binary(len(event.data), recv_us)
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
            self._on_text(b"".join(self._fragments), recv_us)
            self._fragments.clear()

    def _handshake_done(self, response: Response) -> None:
        error = self._protocol.handshake_exc
        if error is None:
            self.opened.set_result(None)
            return
        status = response.status_code
        self.opened.set_exception(
            HandshakeError(f"WebSocket upgrade refused: HTTP {status}", status)
        )


async def open_client(
    url: str,
    on_text: OnText,
    open_timeout_s: float = 10.0,
    max_size: int = 16 << 20,
    compression: bool = False,
    on_binary: OnBinary | None = None,
) -> WsClient:
    """Connect and complete the handshake.

    ``compression`` offers permessage-deflate (less bandwidth, more CPU).

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
            lambda: WsClient(protocol, on_text, on_binary),
            uri.host,
            uri.port,
            ssl=context,
            server_hostname=uri.host if context else None,
        )
        await client.opened
        return client

    return await asyncio.wait_for(connect(), open_timeout_s)
