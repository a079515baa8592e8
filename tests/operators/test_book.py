from decimal import Decimal

from hypothesis import given, settings, strategies as st

from bpx_flows.operators.book import L2Book

prices = st.integers(1, 60).map(lambda t: f"{t / 10:.1f}" if t % 2 else str(t / 10))
quantities = st.sampled_from(["0", "0.00000", "1", "2.50", "0.1"])
levels = st.lists(st.tuples(prices, quantities), max_size=6)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(levels, levels), max_size=30))
def test_book_matches_a_plain_dict_model(updates: list) -> None:
    book = L2Book()
    model: dict[str, dict[Decimal, Decimal]] = {"b": {}, "a": {}}
    for uid, (bids, asks) in enumerate(updates, 1):
        book.apply(bids, asks, uid)
        for side, changes in (("b", bids), ("a", asks)):
            for price, qty in changes:
                if Decimal(qty):
                    model[side][Decimal(price)] = Decimal(qty)
                else:
                    model[side].pop(Decimal(price), None)
        assert dict(book.bids) == model["b"] and dict(book.asks) == model["a"]
        best = max(model["b"].items()) if model["b"] else None
        assert book.best_bid() == best
        best_ask = min(model["a"].items()) if model["a"] else None
        assert book.best_ask() == best_ask
        assert book.update_id == uid


def test_invalid_levels_are_skipped_and_counted() -> None:
    book = L2Book()
    book.apply(
        [("abc", "1"), ("10", "-1"), ("10", "NaN"), ("-5", "1"), ("9", "1")], [], 1
    )
    assert dict(book.bids) == {Decimal(9): Decimal(1)}
    assert book.invalid_levels == 4


@settings(max_examples=200, deadline=None)
@given(
    levels,
    levels,
    st.integers(90, 110),
    st.lists(st.integers(1, 3000), min_size=1, max_size=4),
)
def test_depth_bands_equal_separate_range_sums(bids, asks, mid_ticks, bands) -> None:
    book = L2Book()
    book.apply(bids, asks, 1)
    mid = Decimal(mid_ticks) / 20
    for bps, bid_base, bid_quote, ask_base, ask_quote in book.depth_bands(
        mid, tuple(bands)
    ):
        half = mid * bps / 10_000
        assert (bid_base, bid_quote, ask_base, ask_quote) == book.depth_within(
            mid - half, mid + half
        )
