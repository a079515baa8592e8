"""Our own account beside the market: orders, fills, positions, RFQs, and alerts.

    feed ─► account_records ─► by_symbol ─► track_account ─► split ─► views
                                                                   └─► alerts

Input: the connector's records of the signed ``account.*`` streams, ``markPrice`` (to
revalue positions between events) and, with a book, the markets' depth records (the
book is kept in the same keyed state, for the mids that price fills). Keyed by symbol,
so an order's lifecycle, the position and the book used for a fill's slippage live on
one worker and see the symbol's records in the order the exchange sent them.
``python -m bytewax.run bpx_flows.entry:account`` runs it live with the key in
``BPX_API_SECRET`` (or ``BPX_API_SECRET_FILE``) for ``BPX_SYMBOLS`` (default: every
symbol).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

import bytewax.operators as op
import msgspec
from bytewax.dataflow import Stream, operator

from ..connectors.connection import Record as SourceRecord
from ..operators.account import (
    AccountConfig,
    AccountWithBook,
    AutoCloseAlert,
    SymbolAccount,
    account_symbol,
    is_alert,
    step,
    step_with_book,
)
from ..operators.book_state import BookConfig
from ..operators.orders import OrderFill, OrderState
from ..operators.positions import MarginAlert, PositionView
from ..operators.rfqs import RfqOutcome
from .batching import stateful_steps
from .book import BookSettings, book_streams
from .keys import Route
from .spec import FlowContext, FlowSpec, Outputs, Section

__all__ = [
    "SPEC",
    "AccountOut",
    "AccountSettings",
    "account_streams",
    "track_account",
]


_ACCOUNT = AccountConfig()  # the operator's defaults, which the settings share


class AccountSettings(Section, frozen=True, kw_only=True):
    """``[account]``: alert levels, and whether to keep books for fill slippage."""

    NAME = "account"

    margin_alerts: Annotated[
        list[Decimal],
        msgspec.Meta(
            max_length=16,
            description="margin use (maintenance / equity) levels that alert",
        ),
    ] = msgspec.field(default_factory=lambda: list(_ACCOUNT.margin_alert_levels))
    with_book: Annotated[
        bool,
        msgspec.Meta(description="keep the markets' books: fill slippage vs the mid"),
    ] = False
    in_market: Annotated[
        bool,
        msgspec.Meta(
            description="the market flow tracks the account too (needs the key; "
            "bpx-flows top sets it when one is given)"
        ),
    ] = False

    def problems(self) -> Iterator[tuple[str, str]]:
        """Levels must be finite fractions above zero (margin use can pass 1)."""
        for level in self.margin_alerts:
            if not level.is_finite() or not Decimal(0) < level <= Decimal(10):
                yield "margin_alerts", f"levels must be in (0, 10], got {level}"
                return

    def config(self) -> AccountConfig:
        """The account operator's configuration."""
        return AccountConfig(margin_alert_levels=tuple(self.margin_alerts))


def account_streams(symbols: list[str] | None, with_book: bool = False) -> list[str]:
    """The signed account streams (per symbol, or all), marks, and book streams."""
    kinds = ("account.orderUpdate", "account.positionUpdate")
    if not symbols:
        return [*kinds, "account.rfqUpdate"]
    names = [f"{kind}.{s}" for s in symbols for kind in kinds]
    names.append("account.rfqUpdate")  # RFQs trade on their own *_RFQ symbols
    names += [f"markPrice.{s}" for s in symbols if s.endswith("_PERP")]
    if with_book:
        names += book_streams(symbols)
    return names


def account_records(
    key: Route, batch: list[Any], with_book: bool = False
) -> list[tuple[str, Any]]:
    """``(key(symbol), record)`` for the records the account operator uses."""
    return [
        (key(symbol), record)
        for record in batch
        if (symbol := account_symbol(record, with_book)) is not None
    ]


def _track(
    config: AccountConfig, state: SymbolAccount | None, record: Any
) -> tuple[SymbolAccount, list[Any]]:
    return step(state, record, config)


def _track_with_book(
    config: AccountConfig,
    book: BookConfig,
    state: AccountWithBook | None,
    record: Any,
) -> tuple[AccountWithBook, list[Any]]:
    return step_with_book(state, record, config, book)


@dataclass(frozen=True)
class AccountOut:
    """The account step's outputs."""

    views: Stream[OrderState | OrderFill | PositionView | RfqOutcome]
    alerts: Stream[AutoCloseAlert | MarginAlert]


@operator
def track_account(
    step_id: str,
    records: Stream[SourceRecord],
    config: AccountConfig,
    book: BookConfig | None = None,
    route: Route | None = None,
) -> AccountOut:
    """Connector records in; account views and alerts out.

    With ``book``, each symbol's order book is kept beside its account (from the
    depth records of ``records``) and fills are priced against its mid.
    """
    # One call per batch selects and keys the records (see flows.batching).
    select = functools.partial(
        account_records, route or str, with_book=book is not None
    )
    keyed: Any = op.flat_map_batch("account_records_by_symbol", records, select)
    track: Any = (
        functools.partial(_track, config)
        if book is None
        else functools.partial(_track_with_book, config, book)
    )
    tracked = stateful_steps("track", keyed, track)
    unkeyed = op.map("unkey", tracked, lambda key_output: key_output[1])
    split = op.branch("split", unkeyed, is_alert)
    return AccountOut(split.falses, split.trues)


def _streams(context: FlowContext) -> list[str]:
    with_book = context.section(AccountSettings).with_book
    return account_streams(list(context.symbols), with_book)


def _wire(records: Stream[SourceRecord], context: FlowContext) -> Outputs:
    settings = context.section(AccountSettings)
    book = None
    if settings.with_book:
        book = context.section(BookSettings).config(context.symbols)
    account = track_account("account", records, settings.config(), book, context.route)
    return [account.views], [account.alerts]


def _check(context: FlowContext) -> Iterator[tuple[str, str]]:
    if context.section(AccountSettings).with_book and not context.symbols:
        yield "account.with_book", "needs symbols: a book is kept per named market"


SPEC = FlowSpec(
    name="account",
    help="your orders, fills, positions and RFQs from the signed private streams",
    sections=(AccountSettings, BookSettings),
    streams=_streams,
    wire=_wire,
    produces=(
        OrderState,
        OrderFill,
        PositionView,
        RfqOutcome,
        MarginAlert,
        AutoCloseAlert,
    ),
    symbols="optional",
    check=_check,
    clock=True,  # RFQs expire by the source's watermark on quiet markets
)
