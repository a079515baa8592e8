"""The full-screen view: five panels over one market, redrawn four times a second.

Keys: ``n``/``→`` and ``p``/``←`` switch market, ``i`` the candle interval, ``1``-``6``
show one panel alone (again, or ``Esc``: all), ``q`` quits. The flow runs in a
thread of this process (``bpx_flows.top.FlowThread``); the screen reads only the
latest state (``TopState``), so a slow terminal drops frames, never records.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Footer, Header, Static

from .health import Health
from .render import (
    account_panel,
    book_panel,
    candle_panel,
    derivatives_panel,
    health_panel,
    liquidations_panel,
)
from .state import TopState

__all__ = ["PANELS", "TopApp", "fit"]

PANELS = ("book", "candles", "derivatives", "liquidations", "health", "account")
REDRAW_S = 0.25


class TopApp(App[None]):
    """``bpx-flows top``: the market flow's latest state, drawn."""

    TITLE = "bpx-flows top"
    CSS = """
    Horizontal { height: 1fr; }
    #upper { height: 3fr; }
    #lower { height: 2fr; }
    .panel { border: round $accent; padding: 0 1; height: 1fr; overflow: hidden; }
    #book { width: 36; }
    #candles, #derivatives, #liquidations, #health, #account { width: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "quit"),
        Binding("n,right", "market(1)", "next market"),
        Binding("p,left", "market(-1)", "previous"),
        Binding("i", "interval", "interval"),
        *(
            Binding(str(n), f"zoom('{name}')", name, show=False)
            for n, name in enumerate(PANELS, 1)
        ),
        Binding("escape", "zoom('')", "all panels", show=False),
    ]

    def __init__(
        self,
        state: TopState,
        health: Health,
        intervals: list[str],
        source: str,
        seconds: float | None = None,
        finished: Any = None,
        account: bool = False,
    ) -> None:
        super().__init__()
        self.state = state
        self.health = health
        self.intervals = intervals or ["1m"]
        self.interval = self.intervals[0]
        self.source_name = source
        self.seconds = seconds
        self.finished = finished or (lambda: None)  # -> None, or why the flow ended
        self.account = account  # the account panel (a key was given)
        self.market_index = 0
        self.zoomed = ""
        self.shown: dict[str, str] = {}  # each panel's last text (tests read it)
        self._started = time.monotonic()

    def compose(self) -> ComposeResult:
        """Two rows of panels between the header and the key bar."""
        yield Header(show_clock=True)
        with Horizontal(id="upper"):
            yield Static(id="book", classes="panel")
            yield Static(id="candles", classes="panel")
        with Horizontal(id="lower"):
            yield Static(id="derivatives", classes="panel")
            yield Static(id="liquidations", classes="panel")
            yield Static(id="health", classes="panel")
            yield Static(id="account", classes="panel")
        yield Footer()

    def on_mount(self) -> None:
        """Titles, and the redraw timer."""
        titles = ("book", "candles", "derivatives", "liquidations", "feed", "account")
        for name, title in zip(PANELS, titles, strict=True):
            self.query_one(f"#{name}", Static).border_title = title
        self.query_one("#account", Static).display = self.account
        self.set_interval(REDRAW_S, self.redraw)
        self.redraw()

    # Keys.

    def action_market(self, step: int) -> None:
        """The next (or previous) market."""
        count = len(self.state.symbols())
        if count:
            self.market_index = (self.market_index + step) % count
        self.redraw()

    def action_interval(self) -> None:
        """The next candle interval."""
        at = self.intervals.index(self.interval)
        self.interval = self.intervals[(at + 1) % len(self.intervals)]
        self.redraw()

    def action_zoom(self, name: str) -> None:
        """One panel alone (the same key again: all of them)."""
        self.zoomed = "" if name == self.zoomed else name
        for panel in PANELS:
            shown = self.zoomed in ("", panel) and (panel != "account" or self.account)
            self.query_one(f"#{panel}", Static).display = shown
        for row, members in (("upper", PANELS[:2]), ("lower", PANELS[2:])):
            self.query_one(f"#{row}").display = self.zoomed in ("", *members)
        self.query_one("#book", Static).styles.width = "1fr" if self.zoomed else 36
        self.redraw()

    # Drawing.

    def redraw(self) -> None:
        """Every panel from the latest state (a few times a second at most)."""
        why = self.finished()
        elapsed = time.monotonic() - self._started
        if self.seconds is not None and elapsed >= self.seconds:
            self.exit()
            return
        symbols = self.state.symbols()
        symbol = symbols[self.market_index % len(symbols)] if symbols else None
        self.sub_title = self._where(symbol, symbols) + (f" · {why}" if why else "")
        health = self.health.read()
        self._draw("health", lambda w, h: health_panel(health, w, h))
        if symbol is None:
            return
        snap = self.state.snapshot(symbol)
        self._draw("book", lambda w, h: book_panel(snap, w, h))
        self._draw("candles", lambda w, h: candle_panel(snap, self.interval, w, h))
        self._draw("derivatives", lambda w, h: derivatives_panel(snap, w, h))
        self._draw("liquidations", lambda w, h: liquidations_panel(snap, w, h))
        self._draw("account", lambda w, h: account_panel(snap, w, h))
        self.query_one("#candles", Static).border_title = f"candles {self.interval}"

    def _where(self, symbol: str | None, symbols: list[str]) -> str:
        if symbol is None:
            return f"{self.source_name}: waiting for records"
        at = self.market_index % len(symbols) + 1
        return f"{symbol} ({at}/{len(symbols)}) · {self.source_name}"

    def _draw(self, name: str, make: Any) -> None:
        panel = self.query_one(f"#{name}", Static)
        if not panel.display:
            return
        width, height = panel.content_size.width, panel.content_size.height
        text = fit(make(max(width, 8), max(height, 2)), width, height)
        panel.update(text)
        self.shown[name] = text.plain


def fit(text: Text, width: int, height: int) -> Text:
    """The first ``height`` lines of ``text``, each cut at ``width`` columns."""
    lines = text.split("\n", allow_blank=True)[: max(height, 1)]
    for line in lines:
        line.truncate(max(width, 1), overflow="crop")
    return Text("\n").join(lines)
