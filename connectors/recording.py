"""Recordings: every raw frame and REST answer as JSON Lines, and reading them back.

One object per line:

- a header: ``{"recorder": "bpx-flows", "version": 1, "streams": [...],
  "started_us": N}``
- a frame, unchanged but for a receive time spliced in front:
  ``{"recv_us": N, "stream": "...", "data": {...}}`` (error frames likewise);
- a frame that was not a JSON object: ``{"recv_us": N, "raw": "<text>"}``;
- a REST answer: ``{"recv_us": N, "rest": "/api/v1/depth", "for_stream": "depth.X",
  "params": {...}, "data": <body>}``;
- a lost connection: ``{"recv_us": N, "disconnect": "<cause>"}``.

Files ending in ``.gz`` are gzip. Lines are flushed (gzip: sync-flushed) at least every
``flush_every_s``, so a killed recorder leaves a file readable up to that point; the
reader stops quietly at a torn last line.
"""

from __future__ import annotations

import gzip
import logging
import re
import time
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, cast

import msgspec
from isal import igzip, isal_zlib

from .backpack.backfill import TradeBackfill
from .backpack.replayer import unsplice

__all__ = [
    "LineRecorder",
    "Recorder",
    "RecordingReader",
    "header_line",
    "is_frame_line",
    "iter_lines",
    "read_header",
    "redact_signatures",
    "unsplice",
]

log = logging.getLogger("bpx_flows.recording")
_encode = msgspec.json.Encoder().encode
_READ_BYTES = 1 << 20
# A truncated or corrupt gzip stream (a killed recorder). isal's stub types its
# error as an instance, hence the cast.
_TORN: tuple[type[BaseException], ...] = (
    EOFError,
    zlib.error,
    gzip.BadGzipFile,
    cast("type[BaseException]", isal_zlib.error),
)


class RecordingReader:
    """The complete lines of a recording, and how much of the file is read.

    A torn tail (a killed recorder: a partial last line, or a truncated gzip stream)
    ends the iteration with a warning instead of an exception.
    """

    def __init__(self, path: str | Path, skip: int = 0) -> None:
        self._path = path
        self._skip = skip
        self._size = max(Path(path).stat().st_size, 1)
        self._raw: BinaryIO | None = None

    def fraction_read(self) -> float:
        """0..1: the share of the (compressed) file consumed so far."""
        if self._raw is None or self._raw.closed:
            return 0.0
        return min(self._raw.tell() / self._size, 1.0)

    def __iter__(self) -> Iterator[bytes]:
        """Every complete line after the first ``skip``."""
        for block in self.blocks():
            yield from block

    def blocks(self) -> Iterator[list[bytes]]:
        """The complete lines after the first ``skip``, a read (~1 MiB) at a time."""
        path = self._path
        with open(path, "rb") as raw:
            self._raw = raw
            # ISA-L inflates 3x faster than zlib; every worker of a sharded replay
            # reads the whole file, so this part does not shrink with more workers.
            fh: BinaryIO = (
                igzip.GzipFile(fileobj=raw)  # type: ignore[no-untyped-call,assignment]
                if str(path).endswith(".gz")
                else raw
            )
            to_skip = self._skip
            tail = b""  # a line split across two reads
            try:
                # Big reads split into lines in C: twice as fast as line iteration.
                while chunk := fh.read(_READ_BYTES):
                    lines = (tail + chunk).splitlines(keepends=True)
                    tail = lines.pop() if not lines[-1].endswith(b"\n") else b""
                    if to_skip:
                        skipped = min(to_skip, len(lines))
                        del lines[:skipped]
                        to_skip -= skipped
                    if lines:
                        yield lines
            except _TORN as exc:
                log.warning("%s: recording ends early (%s)", path, exc)
                return
            if tail:
                log.warning("%s: ignoring a torn last line (%d bytes)", path, len(tail))


def is_frame_line(line: bytes) -> bool:
    """Whether a recording line holds a data frame (stream first or last)."""
    # find, not ``in``: CPython 3.11's ``bytes in bytes`` first tries the operand as
    # an int, raising and discarding a TypeError each time (1.6x the instructions).
    return line.find(b',"stream":"') >= 0


class RecordingHeader(msgspec.Struct, frozen=True):
    """The first line of a recording."""

    recorder: str
    version: int
    streams: list[str]


def read_header(path: str | Path) -> RecordingHeader:
    """The header of a recording.

    Raises:
        ConfigError: no such file, unreadable, or not a bpx-flows recording (not
            JSON Lines, not gzip although named ``.gz``, no header line).
    """
    from .errors import ConfigError

    if not Path(path).is_file():
        msg = f"no such recording: {path}"
        raise ConfigError(msg)
    try:
        first = next(iter_lines(path), b"")
    except OSError as exc:
        msg = f"cannot read the recording {str(path)!r}: {exc.strerror or exc}"
        raise ConfigError(msg) from None
    try:
        header = msgspec.json.decode(first, type=RecordingHeader)
    except msgspec.DecodeError:
        header = None
    if header is None or header.recorder != "bpx-flows":
        msg = (
            f"{path}: not a bpx-flows recording (its first line is not a recorder "
            "header); make one with `bpx-flows record` or `bpx-flows sim-session`"
        )
        raise ConfigError(msg)
    return header


def iter_lines(path: str | Path, skip: int = 0) -> Iterator[bytes]:
    """The complete lines of a recording, after skipping ``skip`` of them."""
    return iter(RecordingReader(path, skip))


_SIGNATURE = re.compile(rb'("signature"\s*:\s*)(\[[^\]]*\]|"[^"]*")')


def redact_signatures(data: bytes) -> bytes:
    """``data`` with the value of every ``"signature"`` key replaced."""
    return _SIGNATURE.sub(rb'\1"[redacted]"', data)


def header_line(streams: Sequence[str]) -> bytes:
    """A recording's first line: who wrote it, the streams, when it started."""
    header = {
        "recorder": "bpx-flows",
        "version": 1,
        "streams": list(streams),
        "started_us": time.time_ns() // 1000,
    }
    return _encode(header) + b"\n"


class LineRecorder:
    """A ``Tap`` that turns what a connection sees into recording lines.

    Subclasses say where a line goes (``_write``): a file (``Recorder``), a Kafka
    topic (``connectors.kafka.recorder``).
    """

    lines = 0

    def _write(self, line: bytes) -> None:
        raise NotImplementedError

    # The Tap interface.

    def frame(self, raw: str | bytes, recv_us: int, json_object: bool) -> None:
        """Write one received frame, unchanged but for ``recv_us``.

        A frame that carries a ``signature`` (a server echoing a SUBSCRIBE request in
        an error, say) is written with the signature redacted: recordings are shared.
        """
        data = raw.encode() if isinstance(raw, str) else raw
        if b'"signature"' in data:
            data = redact_signatures(data)
        stripped = data.lstrip()
        if json_object and stripped.startswith(b"{") and b"\n" not in data:
            body = stripped[1:].lstrip()
            sep = b"," if not body.startswith(b"}") else b""
            self._write(b'{"recv_us":%d%s%s\n' % (recv_us, sep, body))
        else:
            text = data.decode("utf-8", "replace")
            self._write(_encode({"recv_us": recv_us, "raw": text}) + b"\n")

    def rest(
        self, stream: str, path: str, params: dict[str, str], body: bytes, recv_us: int
    ) -> None:
        """Write one REST answer and the stream it was fetched for."""
        head = _encode(
            {"recv_us": recv_us, "rest": path, "for_stream": stream, "params": params}
        )
        self._write(head[:-1] + b',"data":' + body.strip() + b"}\n")

    def disconnected(self, cause: str, recv_us: int) -> None:
        """Write a lost-connection marker."""
        self._write(_encode({"recv_us": recv_us, "disconnect": cause}) + b"\n")

    def backfill(self, report: TradeBackfill) -> None:
        """Write how a trade backfill ended (a replay emits the same record)."""
        body = msgspec.json.encode(report)
        self._write(b'{"recv_us":%d,"backfill":%s}\n' % (report.recv_us, body))


class Recorder(LineRecorder):
    """A recording file; use as a context manager.

    Args:
        path: the output file (``.gz`` for gzip).
        streams: the subscribed streams, kept in the header.
        flush_every_s: the longest time a line stays in memory, seconds.
    """

    def __init__(
        self, path: str | Path, streams: Sequence[str], flush_every_s: float = 1.0
    ) -> None:
        self.path = Path(path)
        self._gzip = self.path.name.endswith(".gz")
        self.path.parent.mkdir(parents=True, exist_ok=True)  # as --out files do
        raw = open(self.path, "wb")  # noqa: SIM115 (closed in close())
        self._raw = raw
        self._out: BinaryIO = (
            gzip.GzipFile(fileobj=raw, mode="wb")  # type: ignore[assignment]
            if self._gzip
            else raw
        )
        self._flush_every_s = flush_every_s
        self._last_flush = time.monotonic()
        self.lines = 0
        self._write(header_line(streams))

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Output.

    def _write(self, line: bytes) -> None:
        self._out.write(line)
        self.lines += 1
        now = time.monotonic()
        if now - self._last_flush >= self._flush_every_s:
            self.flush()
            self._last_flush = now

    def flush(self) -> None:
        """Push buffered lines to the file (a gzip sync point)."""
        if isinstance(self._out, gzip.GzipFile):
            self._out.flush(zlib.Z_SYNC_FLUSH)
        else:
            self._out.flush()
        self._raw.flush()

    def close(self) -> None:
        """Finish the file."""
        if not self._raw.closed:
            self._out.close()
            if self._out is not self._raw:
                self._raw.close()
