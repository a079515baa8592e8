"""The simulator's reference data: assets, securities, sessions, prediction events.

What the exchange publishes about its listings besides the markets themselves, in the
shapes of the OpenAPI contract (``docs/contract/``), derived from the simulated
markets so every answer agrees with ``/api/v1/markets``: one asset per base and
quote symbol (``/api/v1/assets``, which ccxt's ``load_markets`` asks for), a
security per tokenized stock (``*.US``), the US market sessions they trade in, and
one prediction event per ``PREDICTION`` market. Plain data, no I/O.
"""

from __future__ import annotations

from typing import Any

from .engine import MarketSpec

__all__ = [
    "assets",
    "market_sessions",
    "prediction_events",
    "prediction_tags",
    "securities",
]

_STOCK_SUFFIXES = (".US", ".HK")
_SESSIONS = [
    {
        "name": "US_MARKET_HOURS",
        "description": "US regular trading hours",
        "startTime": "09:30:00",
        "endTime": "16:00:00",
        "timezone": "America/New_York",
        "startWeekday": 1,
        "endWeekday": 5,
    },
    {
        "name": "US_EXTENDED_HOURS",
        "description": "US pre-market and after-hours trading",
        "startTime": "04:00:00",
        "endTime": "20:00:00",
        "timezone": "America/New_York",
        "startWeekday": 1,
        "endWeekday": 5,
    },
]
_TAGS = [{"slug": "politics", "title": "Politics"}]
_CREATED = "2024-01-16T00:00:00"


def _is_stock(symbol: str) -> bool:
    return symbol.endswith(_STOCK_SUFFIXES)


def assets(markets: tuple[MarketSpec, ...]) -> list[dict[str, Any]]:
    """``GET /api/v1/assets``: every base and quote asset, on one blockchain each."""
    names = sorted({m.base for m in markets} | {m.quote for m in markets})
    return [
        {
            "symbol": name,
            "displayName": name,
            "coingeckoId": None,
            "tokens": [
                {
                    "blockchain": "Solana",
                    "contractAddress": None,
                    "depositEnabled": True,
                    "displayName": name,
                    "maximumWithdrawal": None,
                    "minimumDeposit": "0.01",
                    "minimumWithdrawal": "0.02",
                    "withdrawEnabled": True,
                    "withdrawalFee": "0.01",
                }
            ],
        }
        for name in names
    ]


def securities(markets: tuple[MarketSpec, ...]) -> list[dict[str, Any]]:
    """``GET /api/v1/securities``: the tokenized stocks and their session rules."""
    stocks = sorted({m.base for m in markets if _is_stock(m.base)})
    step = {m.base: m.step_size for m in markets}
    return [
        {
            "asset": stock,
            "name": f"{stock.split('.')[0]} (tokenized share)",
            "sessions": [
                {
                    "name": session["name"],
                    "minQuantity": step[stock],
                    "maxQuantity": "10000",
                    "stepSize": step[stock],
                }
                for session in _SESSIONS
            ],
        }
        for stock in stocks
    ]


def market_sessions() -> list[dict[str, Any]]:
    """``GET /api/v1/market-sessions``."""
    return [dict(session) for session in _SESSIONS]


def prediction_tags() -> list[dict[str, Any]]:
    """``GET /api/v1/prediction/tags``."""
    return [dict(tag) for tag in _TAGS]


def prediction_events(
    markets: tuple[MarketSpec, ...],
    prices: dict[str, str],
    query: dict[str, str],
) -> list[dict[str, Any]]:
    """``GET /api/v1/prediction``: one open event per ``PREDICTION`` market.

    ``prices`` are the markets' current prices (the active price); the query's
    ``symbol``, ``tagSlug``, ``eventSlug``, ``resolved``, ``limit`` and ``offset``
    filter as the exchange does.
    """
    events = []
    for market in markets:
        if market.market_type != "PREDICTION":
            continue
        slug = market.base.lower()
        wanted = (
            query.get("symbol") in (None, market.symbol)
            and query.get("tagSlug") in (None, "politics")
            and query.get("eventSlug") in (None, slug)
            and query.get("resolved") in (None, "false")
        )
        if not wanted:
            continue
        events.append(
            {
                "slug": slug,
                "title": f"Will {market.base} resolve yes?",
                "predictionMarkets": [
                    {
                        "marketSymbol": market.symbol,
                        "question": f"Will {market.base} resolve yes?",
                        "yesOutcomeLabel": "Yes",
                        "noOutcomeLabel": "No",
                        "rules": "Resolves yes if the simulated outcome happens.",
                        "activePrice": prices.get(market.symbol, market.start_price),
                        "quoteVolume": "0",
                        "quoteVolumeLifetime": "0",
                        "resolutionDelaySecs": 3600,
                    }
                ],
                "tags": prediction_tags(),
                "series": [{"slug": f"{slug}-series", "title": market.base}],
                "description": "A simulated prediction event.",
                "quoteVolume": "0",
                "resolution": {"resolved": False, "startDate": _CREATED},
                "resolved": False,
                "resolutionDelaySecs": 3600,
            }
        )
    offset = int(query.get("offset", "0") or 0)
    limit = int(query.get("limit", "100") or 100)
    return events[offset : offset + limit]
