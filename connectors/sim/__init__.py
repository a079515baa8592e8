"""A local Backpack exchange: the same protocol on loopback, seeded and reproducible."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

from .encode import Dialect, FrameEncoder
from .exchange import (
    DEFAULT_MARKETS,
    Exchange,
    ScheduledCascade,
    SimConfig,
)
from .faults import Fault, FaultKind, parse_fault
from .server import AUTH_ERROR_CODE, ServerConfig, SimServer

__all__ = [
    "AUTH_ERROR_CODE",
    "DEFAULT_MARKETS",
    "Dialect",
    "Exchange",
    "Fault",
    "FaultKind",
    "FrameEncoder",
    "ScheduledCascade",
    "ServerConfig",
    "SimConfig",
    "SimServer",
    "SimThread",
    "parse_fault",
]

T = TypeVar("T")


class SimThread:
    """Runs a ``SimServer`` on its own event loop in a background thread.

    For tests and for running the simulator beside synchronous code (the Bytewax demo).
    Use as a context manager; ``call`` runs a function on the simulator's loop.
    """

    def __init__(self, server: SimServer) -> None:
        self.server = server
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="bpx-sim", daemon=True
        )

    def __enter__(self) -> SimServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(
            timeout=30
        )
        return self.server

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop.is_closed() or not self._thread.is_alive():
            return  # already stopped: stopping twice is harmless
        try:
            asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(
                timeout=15
            )
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=15)
            if not self._thread.is_alive():
                self._loop.close()

    def call(self, fn: Callable[[], T], timeout_s: float = 10.0) -> T:
        """Run ``fn()`` on the simulator's loop and return its result."""

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(
            timeout=timeout_s
        )
