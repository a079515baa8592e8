"""Console lines: the words for what records carry as data (presentation layer)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bpx_flows.operators.book_state import BookIntegrity, BookTop, IntegrityKind
from bpx_flows.presentation import describe, integrity_detail


def integrity(kind: IntegrityKind, **values: object) -> BookIntegrity:
    return BookIntegrity(
        stream="depth.SOL_USDC",
        symbol="SOL_USDC",
        kind=kind,
        update_id=values.pop("update_id", 7),  # type: ignore[arg-type]
        recv_us=1,
        **values,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("record", "words"),
    [
        pytest.param(
            integrity(IntegrityKind.GAP, expected=1001, got=1003),
            "expected update id 1001, got 1003",
            id="gap",
        ),
        pytest.param(
            integrity(IntegrityKind.RESYNC_STARTED, reason="gap"),
            "gap; the book is invalid until the next snapshot",
            id="resync",
        ),
        pytest.param(
            integrity(IntegrityKind.INVALID_LEVEL, skipped=2),
            "2 level(s) with a bad price or quantity skipped",
            id="levels",
        ),
        pytest.param(
            integrity(IntegrityKind.INVALID_LEVEL, update_id=9),
            "bookTicker u=9 has a non-numeric price or quantity",
            id="ticker-text",
        ),
        pytest.param(
            integrity(
                IntegrityKind.CROSSED,
                ours=BookTop(Decimal(11), Decimal(1), Decimal(10), Decimal(2)),
            ),
            "best bid 11 >= best ask 10",
            id="crossed",
        ),
        pytest.param(
            integrity(
                IntegrityKind.TICKER_MISMATCH,
                ours=BookTop(Decimal(10), Decimal(1), Decimal(11), Decimal(3)),
                theirs=BookTop(Decimal(10), Decimal(1), Decimal(11), Decimal("2.5")),
            ),
            "ours bid 10 x 1 ask 11 x 3; bookTicker bid 10 x 1 ask 11 x 2.5",
            id="ticker",
        ),
        pytest.param(
            integrity(IntegrityKind.UNKNOWN_SYMBOL, update_id=None),
            "SOL_USDC is not one of the configured symbols",
            id="unknown",
        ),
    ],
)
def test_an_integrity_event_is_put_in_words_from_its_values(
    record: BookIntegrity, words: str
) -> None:
    assert integrity_detail(record) == words
    assert describe(record).endswith(f"INTEGRITY {record.kind.value}: {words}")


def test_every_integrity_kind_has_words() -> None:
    for kind in IntegrityKind:
        assert integrity_detail(integrity(kind))
