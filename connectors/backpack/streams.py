"""Backpack stream names: build, parse and validate every channel pattern.

Symbols may contain ``.`` (``AAPL.US_USDC_PERP``) and lower case (``kPEPE_USDC_PERP``),
so a stream name is parsed by its known prefix, never by splitting on ``.``.
"""

from __future__ import annotations

import difflib
import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from ..errors import ConfigError

__all__ = [
    "Channel",
    "DepthWindow",
    "KlineInterval",
    "StreamName",
    "check_symbols",
    "parse_stream",
    "parse_streams",
]

_SYMBOL = re.compile(r"^[A-Za-z0-9._]+$")
_LOOKS_LIKE_WINDOW = re.compile(r"^\d+ms\.")
_E = TypeVar("_E", bound=enum.StrEnum)


class Channel(enum.StrEnum):
    """The stream kinds; the value is the stream-name prefix."""

    BOOK_TICKER = "bookTicker"
    DEPTH = "depth"
    KLINE = "kline"
    LIQUIDATION = "liquidation"
    MARK_PRICE = "markPrice"
    OPEN_INTEREST = "openInterest"
    TICKER = "ticker"
    TRADE = "trade"
    ORDER_UPDATE = "account.orderUpdate"
    POSITION_UPDATE = "account.positionUpdate"
    RFQ_UPDATE = "account.rfqUpdate"

    @property
    def private(self) -> bool:
        """Whether subscribing needs an ED25519 signature."""
        return self.value.startswith("account.")


class DepthWindow(enum.StrEnum):
    """Aggregation windows of ``depth.<window>.<symbol>``."""

    MS_200 = "200ms"
    MS_600 = "600ms"
    MS_1000 = "1000ms"

    @property
    def micros(self) -> int:
        """The window length in microseconds."""
        return int(self.value.removesuffix("ms")) * 1000


class KlineInterval(enum.StrEnum):
    """Intervals of ``kline.<interval>.<symbol>``."""

    S1 = "1s"
    M1 = "1m"
    M3 = "3m"
    M5 = "5m"
    M15 = "15m"
    M30 = "30m"
    H1 = "1h"
    H2 = "2h"
    H4 = "4h"
    H6 = "6h"
    H8 = "8h"
    H12 = "12h"
    D1 = "1d"
    D3 = "3d"
    W1 = "1w"
    MONTH1 = "1month"


# Channels whose name is "<channel>.<symbol>" with a mandatory symbol.
_SYMBOL_CHANNELS = {
    Channel.BOOK_TICKER,
    Channel.MARK_PRICE,
    Channel.OPEN_INTEREST,
    Channel.TICKER,
    Channel.TRADE,
}
# Channels where the symbol is optional: "liquidation" or "liquidation.<symbol>".
_OPTIONAL_SYMBOL_CHANNELS = {
    Channel.LIQUIDATION,
    Channel.ORDER_UPDATE,
    Channel.POSITION_UPDATE,
    Channel.RFQ_UPDATE,
}


@dataclass(frozen=True, slots=True)
class StreamName:
    """A parsed stream name; ``str(name)`` is the exact wire name.

    Attributes:
        channel: the stream kind.
        symbol: the market, or ``None`` for all-markets streams (``liquidation``,
            ``account.orderUpdate``...).
        interval: the kline interval (kline only).
        window: the depth aggregation window; ``None`` is the real-time depth stream.
    """

    channel: Channel
    symbol: str | None = None
    interval: KlineInterval | None = None
    window: DepthWindow | None = None

    def __post_init__(self) -> None:
        if self.symbol is not None and not _SYMBOL.match(self.symbol):
            msg = (
                f"invalid symbol {self.symbol!r}: symbols use letters, digits, '_' "
                "and '.', e.g. SOL_USDC or SOL_USDC_PERP"
            )
            raise ConfigError(msg)
        needs_symbol = self.channel in _SYMBOL_CHANNELS or self.channel in (
            Channel.DEPTH,
            Channel.KLINE,
        )
        if needs_symbol and self.symbol is None:
            example = f"{self.channel.value}.SOL_USDC"
            msg = f"stream {self.channel.value!r} needs a symbol, e.g. {example}"
            raise ConfigError(msg)
        if (self.channel is Channel.KLINE) != (self.interval is not None):
            msg = "a kline stream needs an interval and only kline streams take one"
            raise ConfigError(msg)
        if self.window is not None and self.channel is not Channel.DEPTH:
            msg = "only depth streams take an aggregation window"
            raise ConfigError(msg)

    @property
    def private(self) -> bool:
        """Whether subscribing needs an ED25519 signature."""
        return self.channel.private

    def __str__(self) -> str:
        parts: list[str] = [self.channel.value]
        if self.window is not None:
            parts.append(self.window.value)
        if self.interval is not None:
            parts.append(self.interval.value)
        if self.symbol is not None:
            parts.append(self.symbol)
        return ".".join(parts)


def _enum_value(kind: type[_E], value: str, what: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(m.value for m in kind)
        msg = f"unknown {what} {value!r}; use one of: {choices}"
        raise ConfigError(msg) from None


def parse_stream(name: str) -> StreamName:
    """Parse a wire stream name.

    Raises:
        ConfigError: the name matches no channel pattern, or has an unknown kline
            interval, depth window or an invalid symbol; the message names the fix.
    """
    for channel in sorted(Channel, key=lambda c: -len(c.value)):
        prefix = channel.value
        if name == prefix:
            return StreamName(channel)
        if not name.startswith(prefix + "."):
            continue
        rest = name[len(prefix) + 1 :]
        if channel is Channel.DEPTH:
            head, _, tail = rest.partition(".")
            if head in DepthWindow.__members__.values() and tail:
                return StreamName(channel, tail, window=DepthWindow(head))
            if _LOOKS_LIKE_WINDOW.match(rest):
                _enum_value(DepthWindow, head, "depth window")
            return StreamName(channel, rest)
        if channel is Channel.KLINE:
            head, _, tail = rest.partition(".")
            interval = _enum_value(KlineInterval, head, "kline interval")
            if not tail:
                msg = f"stream {name!r} has no symbol; use kline.{head}.SOL_USDC"
                raise ConfigError(msg)
            return StreamName(channel, tail, interval=interval)
        return StreamName(channel, rest)
    known = ", ".join(c.value for c in Channel)
    msg = f"unknown stream {name!r}: a stream name starts with one of {known}"
    raise ConfigError(msg)


def parse_streams(names: Iterable[str]) -> list[StreamName]:
    """Parse several names, dropping exact duplicates but keeping their order."""
    seen: dict[str, StreamName] = {}
    for name in names:
        if name not in seen:
            seen[name] = parse_stream(name)
    return list(seen.values())


def check_symbols(streams: Iterable[StreamName], known: Iterable[str]) -> None:
    """Check that every stream's symbol is a listed market.

    The exchange answers a subscription to an unknown symbol with silence, so this
    is the only place a typo can be caught.

    Raises:
        ConfigError: naming the unknown symbols and the closest listed ones.
    """
    listed = set(known)
    by_upper = {s.upper(): s for s in listed}  # sol_usdc is SOL_USDC mistyped
    problems = []
    for stream in streams:
        if stream.symbol is None or stream.symbol in listed:
            continue
        same = by_upper.get(stream.symbol.upper())
        close = (
            [same]
            if same is not None
            else [
                by_upper[m]
                for m in difflib.get_close_matches(stream.symbol.upper(), by_upper, n=3)
            ]
        )
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        problems.append(f"{stream}: unknown market {stream.symbol!r}{hint}")
    if problems:
        msg = (
            "; ".join(problems)
            + ". `bpx-flows markets` (or GET /api/v1/markets) lists the markets."
        )
        raise ConfigError(msg)
