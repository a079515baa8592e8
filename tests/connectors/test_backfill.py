"""The trade-gap tracker and the history answers it turns into frames (pure)."""

from __future__ import annotations

import json

from bpx_flows.connectors.backpack.backfill import (
    PAGE,
    BackfilledTrade,
    BackfillOutcome,
    Gap,
    TradeBackfill,
    TradeGaps,
    backfilled_frames,
    id_ranges,
    in_ranges,
)

STREAM = "trade.SOL_USDC"


def rows(ids: range | list[int]) -> bytes:
    return json.dumps(
        [
            {
                "id": i,
                "price": "10.5",
                "quantity": "1",
                "quoteQuantity": "10.5",
                "timestamp": 1_790_000_000_000 + i,
                "isBuyerMaker": i % 2 == 0,
            }
            for i in ids
        ]
    ).encode()


def gap_of(gaps: TradeGaps, first_seen: int, next_seen: int) -> Gap:
    assert gaps.see(STREAM, "SOL_USDC", first_seen, 1) is None
    found = gaps.see(STREAM, "SOL_USDC", next_seen, 2)
    assert isinstance(found, Gap)
    return found


def test_a_jump_in_ids_is_a_gap_and_duplicates_or_steps_are_not() -> None:
    gaps = TradeGaps()
    assert gaps.see(STREAM, "SOL_USDC", 10, 1) is None
    assert gaps.see(STREAM, "SOL_USDC", 11, 1) is None
    assert gaps.see(STREAM, "SOL_USDC", 11, 1) is None  # a repeat
    assert gaps.see(STREAM, "SOL_USDC", 5, 1) is None  # an old one
    gap = gaps.see(STREAM, "SOL_USDC", 15, 1)
    assert isinstance(gap, Gap) and (gap.first, gap.last) == (12, 14)
    assert gaps.see(STREAM, "BTC_USDC", 1, 1) is None  # markets are separate
    assert gaps.open == 1 and gaps.missing() == 3


def test_one_answer_fills_a_gap_and_reports_it() -> None:
    gaps = TradeGaps()
    gap_of(gaps, 100, 110)
    request, ended = gaps.next_request(3)
    assert request is not None and not ended
    # The page ends at the top of the gap: it skips the one newer trade known.
    assert request.params == {"symbol": "SOL_USDC", "limit": "1000", "offset": "1"}
    frames, report = gaps.answered(request, rows(range(50, 112)), 4)
    assert [f.data.t for f in frames] == list(range(101, 110))
    assert all(type(f.data) is BackfilledTrade and f.stream == STREAM for f in frames)
    assert frames[0].data.T == (1_790_000_000_000 + 101) * 1000
    assert isinstance(report, TradeBackfill)
    assert (report.outcome, report.fetched, report.missing) == (
        BackfillOutcome.FILLED,
        9,
        0,
    )
    assert gaps.open == 0 and gaps.filled == 1


def test_a_long_gap_takes_pages_from_the_top_down() -> None:
    gaps = TradeGaps()
    gap_of(gaps, 1, 2_502)  # 2,500 missing, newest known 2,502
    offsets = []
    for _ in range(5):
        request, _ = gaps.next_request(3)
        assert request is not None
        offset = int(request.params["offset"])
        offsets.append(offset)
        newest = 2_502 - offset  # the exchange printed nothing since
        _, report = gaps.answered(
            request, rows(range(newest - PAGE + 1, newest + 1)), 4
        )
        if report is not None:
            break
    assert report is not None and report.outcome is BackfillOutcome.FILLED
    assert report.requests == len(offsets) == 3
    assert offsets == sorted(offsets)


def test_a_gap_older_than_the_history_is_reported_with_what_is_missing() -> None:
    gaps = TradeGaps()
    gap_of(gaps, 10, 30)
    request, _ = gaps.next_request(3)
    assert request is not None
    # The exchange keeps only ids from 25: a short page that ends above the gap.
    frames, report = gaps.answered(request, rows(range(25, 31)), 4)
    assert [f.data.t for f in frames] == [25, 26, 27, 28, 29]
    assert report is not None
    assert (report.outcome, report.reason, report.missing) == (
        BackfillOutcome.UNFILLABLE,
        "history",
        14,
    )


def test_gaps_waiting_too_long_end_as_budget_and_the_rest_take_turns() -> None:
    gaps = TradeGaps(max_wait_us=100)
    gap_of(gaps, 1, 5)
    assert isinstance(gaps.see(STREAM, "BTC", 1, 50), type(None))
    second = gaps.see(STREAM, "BTC", 9, 60)
    assert isinstance(second, Gap)
    first, _ = gaps.next_request(70)
    assert first is not None and first.gap.symbol == "SOL_USDC"
    turn, _ = gaps.next_request(80)  # the gap with fewer requests goes next
    assert turn is not None and turn.gap.symbol == "BTC"
    nothing, ended = gaps.next_request(1_000)
    assert nothing is None
    assert sorted((r.symbol, r.reason) for r in ended) == [
        ("BTC", "budget"),
        ("SOL_USDC", "budget"),
    ]


def test_failures_and_closing_end_gaps_unfilled() -> None:
    gaps = TradeGaps(max_failures=2)
    gap_of(gaps, 1, 5)
    request, _ = gaps.next_request(3)
    assert request is not None and gaps.failed(request, 4) is None
    report = gaps.failed(request, 5)
    assert report is not None and report.reason == "failed"
    assert isinstance(gaps.see(STREAM, "SOL_USDC", 20, 6), Gap)  # 6..19
    (closed,) = gaps.close(6)
    assert (closed.reason, closed.missing) == ("closed", 14)


def test_too_many_gaps_are_reported_at_once_not_kept() -> None:
    gaps = TradeGaps(max_gaps=1)
    gap_of(gaps, 1, 5)
    report = gaps.see(STREAM, "SOL_USDC", 9, 3)
    assert isinstance(report, TradeBackfill) and report.reason == "too_many_gaps"
    assert gaps.open == 1


def test_hostile_answers_fill_nothing_and_raise_nothing() -> None:
    for body in [b"", b"not json", b"{}", b'[{"id": "x"}]', rows([]), b"[" * 10_000]:
        assert backfilled_frames(STREAM, "SOL_USDC", body, None, 1, 10, 0) == []
    bad = json.dumps(
        [
            {
                "id": 3,
                "price": "NaN",
                "quantity": "1",
                "quoteQuantity": "1",
                "timestamp": 1,
                "isBuyerMaker": True,
            }
        ]
    ).encode()
    assert backfilled_frames(STREAM, "SOL_USDC", bad, None, 1, 10, 0) == []
    repeated = rows([3, 3, 4, 99])
    assert [
        f.data.t for f in backfilled_frames(STREAM, "S", repeated, None, 1, 10, 0)
    ] == [3, 4]


def test_id_ranges_round_trip() -> None:
    ids = {1, 2, 3, 7, 9, 10}
    assert id_ranges(ids) == "1-3,7-7,9-10"
    assert in_ranges(id_ranges(ids)) == ids
    assert in_ranges("") == set()
    for bad in ["x", "3-1", "1-", "-5", "1-99999999999"]:
        assert in_ranges(bad) is None
