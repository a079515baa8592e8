"""The one fetch loop of a connection: makes the ``Fetch``es its planner hands out.

Each fetch is a task: wait its delay, ``GET`` through the shared ``RestClient`` (its
retries and the process's REST budgets), give the body to the planner, record the
answers (the tap), deliver the records. Any failure, a ``RestError`` after the
client's retries, a body the planner cannot read, or a bug, ends that fetch alone:
it is counted, logged once, and handed to the planner, which decides what comes
next. Concurrency is the planner's (its per-kind bounds); time is the injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

import msgspec

from .backpack.fetches import Fetch, FetchKind
from .backpack.planner import FetchPlanner
from .backpack.text import printable
from .backpack.wire import DepthSnapshot
from .rest import RestClient

__all__ = ["AnswerTap", "Fetcher"]

log = logging.getLogger("bpx_flows.connection")

# What a body must decode to for the REST client to accept it (else it retries).
_SHAPES: dict[FetchKind, type[Any]] = {FetchKind.DEPTH: DepthSnapshot}

# A failed fetch's log line: the live stream brings seeds itself a little later.
_FAILURE_LEVEL = {
    FetchKind.MARK_PRICES: logging.INFO,
    FetchKind.OPEN_INTEREST: logging.INFO,
}
_WHAT = {
    FetchKind.DEPTH: "depth snapshot for {symbol}",
    FetchKind.TRADES: "trade history for {symbol}",
    FetchKind.KLINES: "{stream}: kline history",
    FetchKind.MARK_PRICES: "mark prices",
    FetchKind.OPEN_INTEREST: "open interest",
}


class AnswerTap(Protocol):
    """Receives every REST answer used (the recorder's ``rest``)."""

    def rest(
        self, stream: str, path: str, params: dict[str, str], body: bytes, recv_us: int
    ) -> None:
        """One REST answer, and the stream it was fetched for."""


class Fetcher:
    """Runs the fetches of one connection's ``FetchPlanner``.

    Args:
        planner: decides what to fetch and reads the answers.
        rest: the client that makes the requests.
        deliver: receives each fetch's records, in order.
        clock: the wall clock, microseconds.
        tap: receives every answer used (the recorder), or ``None``.
        counted: told of each fetch's end: its kind and whether it was answered
            (the connection's stats), or ``None``.
    """

    def __init__(
        self,
        planner: FetchPlanner,
        rest: RestClient,
        deliver: Callable[[list[Any]], None],
        clock: Callable[[], int],
        tap: AnswerTap | None = None,
        counted: Callable[[FetchKind, bool], None] | None = None,
    ) -> None:
        self._planner = planner
        self._counted = counted
        self._rest = rest
        self._deliver = deliver
        self._clock = clock
        self._tap = tap
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    def pump(self) -> None:
        """Start every fetch that is due (cheap when none is)."""
        if self._closing:
            return
        fetches, ended = self._planner.due(self._clock())
        if ended:
            self._deliver(list(ended))
        for fetch in fetches:
            task = asyncio.create_task(self._run(fetch), name=f"bpx-{fetch.kind.name}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop: cancel the fetches in flight (their answers are not waited for)."""
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    async def _run(self, fetch: Fetch) -> None:
        if fetch.delay_s:
            await asyncio.sleep(fetch.delay_s)
        shape = _SHAPES.get(fetch.kind, msgspec.Raw)
        try:
            body, server_us = await self._rest.get(
                fetch.path, fetch.params, shape, history=fetch.history
            )
            recv_us = self._clock()
            got, records = self._planner.answered(fetch, body, recv_us, server_us)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # RestError, ProtocolError, a bug: this fetch only
            what = _WHAT[fetch.kind].format(
                symbol=fetch.params.get("symbol", ""), stream=fetch.stream
            )
            level = _FAILURE_LEVEL.get(fetch.kind, logging.WARNING)
            log.log(level, "%s failed: %s", what, printable(str(exc)))
            records = self._planner.failed(fetch, self._clock())
            if self._counted is not None:
                self._counted(fetch.kind, False)
        else:
            if fetch.kind is FetchKind.DEPTH:
                log.info("%s: depth snapshot fetched", fetch.stream)
            if self._counted is not None:
                self._counted(fetch.kind, True)
            if self._tap is not None:
                for answer in got:
                    params = dict(answer.params)
                    self._tap.rest(
                        answer.stream, answer.path, params, answer.body, answer.recv_us
                    )
        if records:
            self._deliver(records)
        self._log_kline_progress()
        self.pump()  # the next page, book, or this one again (stale)

    def _log_kline_progress(self) -> None:
        progress, self._planner.kline_progress = self._planner.kline_progress, []
        for done in progress:
            log.info(
                "%s: %d klines of history (%d requests)%s",
                done.stream,
                done.klines,
                done.requests,
                "; the rest not fetched" if done.failed else "",
            )
