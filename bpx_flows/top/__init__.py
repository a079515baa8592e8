"""``bpx-flows top [SYMBOL...]``: the market flow, drawn live in the terminal.

The same program as ``run market``: ``runner.run`` with a ``View`` in place of the
console, in a thread of this process, while Textual draws on the main thread.

- ``state``: the latest outputs, kept by the flow's sink (bounded, lock-guarded);
- ``render``: each panel as Rich text (pure);
- ``health``: the feed's figures, from the live source's connections;
- ``app``: the Textual screen, keys and redraws.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any

from bytewax.outputs import DynamicSink, StatelessSinkPartition

from bpx_flows.connectors.sources import StopSignal
from bpx_flows.flows.account import AccountSettings
from bpx_flows.settings import Settings

from .health import Health
from .state import TopState

__all__ = ["FlowThread", "ViewSink", "run_top"]

LADDER_LEVELS = 12  # the ladder's rows per side at most (a tall terminal)
JOIN_S = 15.0  # the longest the command waits for the flow to finish after q


class ViewSink(DynamicSink[Any]):
    """Every output into a ``TopState`` (one assignment or append per record)."""

    def __init__(self, state: TopState) -> None:
        self.state = state

    def build(
        self, step_id: str, worker_index: int, worker_count: int
    ) -> StatelessSinkPartition[Any]:
        """A partition that hands each batch to the state."""
        state = self.state

        class _Part(StatelessSinkPartition[Any]):
            def write_batch(self, items: list[Any]) -> None:
                state.apply(items)

        return _Part()


class _ToState(logging.Handler):
    """Warnings of the run, shown in the feed panel instead of on the terminal."""

    def __init__(self, state: TopState) -> None:
        super().__init__(logging.WARNING)
        self.state = state

    def emit(self, record: logging.LogRecord) -> None:
        self.state.warn(record.getMessage())


class FlowThread(threading.Thread):
    """``runner.run`` of ``settings`` with a view; ``error`` if it failed."""

    def __init__(self, settings: Settings, state: TopState, health: Health) -> None:
        super().__init__(name="bpx-top-flow", daemon=True)
        self.settings = settings
        self.stop = StopSignal()
        self.view_sink = ViewSink(state)
        self.health = health
        self.error: BaseException | None = None

    def run(self) -> None:
        """The flow, to its end (a replay's end, ``q``, or an error)."""
        from bpx_flows.runner import View, run

        try:
            run(self.settings, View(self.view_sink, self.stop, self.health.attach))
        except BaseException as exc:
            self.error = exc

    def finished(self) -> str | None:
        """Why the flow is over, if it is (for the screen's title)."""
        if self.is_alive():
            return None
        if self.error is not None:
            return f"error: {self.error}"
        return "the flow ended (q quits)"


def run_top(settings: Settings, seconds: float | None, source: str) -> int:
    """Draw the market flow of ``settings`` until ``q`` (or ``seconds``)."""
    from bpx_flows.settings import validate

    from .app import TopApp

    validate(settings)  # bad input: one line before the screen takes over
    state = TopState()
    health = Health(state, source)
    root = logging.getLogger()
    root.handlers = [_ToState(state)]
    root.setLevel(logging.WARNING)
    flow = FlowThread(settings, state, health)
    flow.start()
    intervals = list(getattr(settings.sections.get("candles"), "intervals", []))
    account = settings.section(AccountSettings).in_market
    app = TopApp(state, health, intervals, source, seconds, flow.finished, account)
    started = time.monotonic()
    try:
        app.run()
    finally:
        flow.stop.set()
        flow.join(JOIN_S)
    if flow.error is not None:
        raise flow.error  # a BpxError is one line and exit 2 in the CLI
    records, _, _ = state.totals()
    took = time.monotonic() - started
    print(f"top: {records:,} records in {took:.1f} s", file=sys.stderr)
    return 0
