"""The WebSocket client's frame fast path, against a server that writes raw bytes.

The server completes a real upgrade on 127.0.0.1, then sends hand-made frames in
chunks of any size (one byte at a time included), so every boundary case of the
fast path is met: headers split across reads, extended lengths, control frames and
fragments between text frames, masked and reserved-bit frames, too-large frames, a
close. Each case runs with the fast path on and off (websockets parsing every
frame): the client must see the same messages and the same end either way.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import pytest
from websockets.utils import accept_key

from bpx_flows.connectors.wsclient import HandshakeError, WsClient, open_client

pytestmark = pytest.mark.e2e


def frame(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0) -> bytes:
    """A server frame (unmasked)."""
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    n = len(payload)
    if n < 126:
        return head + bytes([n]) + payload
    if n < 1 << 16:
        return head + bytes([126]) + n.to_bytes(2, "big") + payload
    return head + bytes([127]) + n.to_bytes(8, "big") + payload


def text(payload: bytes) -> bytes:
    return frame(0x1, payload)


def masked_text(payload: bytes) -> bytes:
    mask = b"\x01\x02\x03\x04"
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + body


def _client_frames(data: bytes) -> list[tuple[int, bytes]]:
    """``(opcode, payload)`` of each whole (masked) client frame in ``data``."""
    frames = []
    at = 0
    while at + 2 <= len(data):
        opcode, length = data[at] & 0x0F, data[at + 1] & 0x7F
        start = at + 2
        if length == 126:
            length, start = int.from_bytes(data[at + 2 : at + 4]), at + 4
        mask, start = data[start : start + 4], start + 4
        end = start + length
        if end > len(data):
            break
        frames.append(
            (opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(data[start:end])))
        )
        at = end
    return frames


def _client_close(data: bytes) -> bytes | None:
    """The payload of the client's Close frame in ``data``, once it is whole."""
    closes = [payload for opcode, payload in _client_frames(data) if opcode == 0x8]
    return closes[0] if closes else None


class RawServer:
    """Accepts one upgrade, then writes ``stream`` in ``chunk``-byte writes."""

    def __init__(
        self, stream: bytes, chunk: int, status: int = 101, closes_itself: bool = False
    ) -> None:
        self.closes_itself = closes_itself  # the stream holds the server's Close
        self.stream = stream
        self.chunk = chunk
        self.status = status
        self.received = bytearray()
        self.sockets_open = 0

    async def handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.sockets_open += 1
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            if self.status != 101:
                writer.write(
                    f"HTTP/1.1 {self.status} Moved\r\nLocation: ws://127.0.0.1:1/\r\n"
                    "Content-Length: 0\r\n\r\n".encode()
                )
                await writer.drain()
                await reader.read()  # until the client hangs up
                return
            key = next(
                line.split(b":", 1)[1].strip().decode()
                for line in request.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key")
            )
            accept = accept_key(key)
            writer.write(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
            )
            for at in range(0, len(self.stream), self.chunk):
                writer.write(self.stream[at : at + self.chunk])
                await writer.drain()
                if self.chunk < 64:
                    await asyncio.sleep(0)  # separate reads on the client side
            while chunk := await reader.read(65536):
                self.received += chunk
                code = _client_close(self.received)
                if code is not None:  # answer the closing handshake, then hang up
                    if not self.closes_itself:
                        writer.write(frame(0x8, code))
                        await writer.drain()
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self.sockets_open -= 1


async def talk(
    stream: bytes,
    chunk: int,
    fast: bool,
    until: Callable[[list[bytes]], bool],
    closes_itself: bool = False,
) -> tuple[list[bytes], list[int], int | None, RawServer]:
    """Messages, binary sizes and the close code the client saw."""
    server = RawServer(stream, chunk, closes_itself=closes_itself)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    texts: list[bytes] = []
    binaries: list[int] = []
    try:
        client: WsClient = await open_client(
            f"ws://127.0.0.1:{port}",
            lambda data, _us: texts.append(bytes(data)),
            on_binary=lambda size, _us: binaries.append(size),
            max_size=100_000,
            fast_path=fast,
        )
        async with asyncio.timeout(10):
            while not until(texts) and not client.closed.done():  # noqa: ASYNC110
                await asyncio.sleep(0.005)  # checked as frames arrive, bounded above
            code = client.closed.result().code if client.closed.done() else None
        await client.close(timeout_s=1.0)
    finally:
        listener.close()
        await listener.wait_closed()
    return texts, binaries, code, server


MESSAGES = [b'{"n":%d,"pad":"%s"}' % (i, b"x" * (i * 37 % 300)) for i in range(60)]
BIG = b'{"big":"' + b"y" * 70_000 + b'"}'  # a 64-bit length field


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "websockets"])
@pytest.mark.parametrize("chunk", [1, 3, 7, 1000, 1 << 20])
def test_every_text_frame_arrives_whole_whatever_the_read_sizes(
    fast: bool, chunk: int
) -> None:
    stream = b"".join(text(m) for m in MESSAGES) + text(BIG) + text(b"last")
    texts, _, code, _ = asyncio.run(
        talk(stream, chunk, fast, lambda t: bool(t) and t[-1] == b"last")
    )
    assert texts == [*MESSAGES, BIG, b"last"]
    assert code is None


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "websockets"])
@pytest.mark.parametrize("chunk", [1, 5, 1 << 20])
def test_pings_fragments_and_binary_between_text_frames(fast: bool, chunk: int) -> None:
    stream = b"".join(
        [
            text(b"a"),
            frame(0x9, b"are you there"),  # a ping: answered with a pong
            text(b"b"),
            frame(0x1, b'{"par', fin=False),
            frame(0x9, b"mid-message ping"),  # control frames may interleave
            frame(0x0, b't":', fin=False),
            frame(0x0, b"1}"),
            frame(0x2, b"\x00\x01\x02"),  # binary: reported by size
            frame(0x2, b"\x00", fin=False),
            frame(0x0, b"\x01\x02\x03"),  # a fragmented binary message
            text(b"c"),
        ]
    )
    texts, binaries, code, server = asyncio.run(
        talk(stream, chunk, fast, lambda t: b"c" in t)
    )
    assert texts == [b"a", b"b", b'{"part":1}', b"c"]
    assert binaries == [3, 4]
    assert code is None
    # Two pongs went back, each with its ping's payload (frames read one by one: a
    # pong's header bytes can also occur inside another frame's masked payload).
    pongs = [
        payload for opcode, payload in _client_frames(server.received) if opcode == 0xA
    ]
    assert pongs == [b"are you there", b"mid-message ping"]


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "websockets"])
@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (masked_text(b"masked"), 1002),  # a server must not mask
        (frame(0x1, b"x", rsv=0x40), 1002),  # compressed, but nothing negotiated
        (frame(0x1, b"z" * 100_001), 1009),  # over max_size
        (frame(0x0, b"stray continuation"), 1002),
        (frame(0x8, (1001).to_bytes(2, "big") + b"going away"), 1001),
    ],
    ids=["masked", "reserved-bit", "too-large", "stray-continuation", "close"],
)
def test_a_frame_the_fast_path_does_not_own_ends_as_websockets_decides(
    fast: bool, bad: bytes, code: int
) -> None:
    # websockets fails the connection with ``code`` (and then discards what
    # follows, the server's answer included); a server's Close is echoed.
    stream = text(b"before") + bad + text(b"after: never delivered")
    texts, _, seen_code, server = asyncio.run(
        talk(stream, 1 << 20, fast, lambda _t: False, closes_itself=code == 1001)
    )
    assert texts == [b"before"]
    sent = _client_close(bytes(server.received))
    assert sent is not None and int.from_bytes(sent[:2]) == code
    assert seen_code is not None  # the connection ended


def test_a_refused_upgrade_leaves_no_socket_open() -> None:
    # Every failed attempt (here a redirect, which is never followed) closes its
    # socket: a feed that retries for hours must not leak one per attempt.
    async def attempts() -> tuple[int, int]:
        server = RawServer(b"", 1, status=302)
        listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        before = len(os.listdir("/proc/self/fd"))
        try:
            for _ in range(20):
                with pytest.raises(HandshakeError):
                    await open_client(f"ws://127.0.0.1:{port}", lambda _d, _u: None)
            await asyncio.sleep(0.2)  # the server sees each hang-up
            after = len(os.listdir("/proc/self/fd"))
        finally:
            listener.close()
            await listener.wait_closed()
        return after - before, server.sockets_open

    grown, open_on_server = asyncio.run(attempts())
    assert grown <= 1
    assert open_on_server == 0
