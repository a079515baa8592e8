"""Console lines: an unchanged position prints once; every record is still counted."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import msgspec

from bpx_flows.console import counting_describe
from bpx_flows.operators.positions import PositionSide, PositionView


def view(mark: str, recv_us: int) -> PositionView:
    d = Decimal
    return PositionView(
        symbol="SOL_USDC_PERP", position_id=1, side=PositionSide.SHORT,
        quantity=d("-0.01"), entry_price=d("186.45"), break_even_price=d("186.45"),
        mark_price=d(mark), exposure=d("1.8646"), unrealized_pnl=d("-0.0001"),
        exchange_unrealized_pnl=None, realized_pnl=None,
        initial_margin_fraction=d("0.02"), maintenance_margin_fraction=d("0.01"),
        liquidation_price=None, distance_to_liquidation_bps=None, margin_use=None,
        source="mark", engine_us=recv_us, recv_us=recv_us,
    )  # fmt: skip


def test_an_unchanged_position_line_prints_once() -> None:
    counts: Counter[str] = Counter()
    render = counting_describe(counts)
    first = render(view("186.46", 1))
    assert first is not None and "position short -0.01" in first
    assert render(view("186.46", 2)) is None  # the same line: not printed again
    moved = render(view("186.47", 3))
    assert moved is not None and "mark 186.47" in moved
    assert render(msgspec.structs.replace(view("186.46", 4), symbol="BTC")) is not None
    assert sum(counts.values()) == 4  # every record counted for the summary
