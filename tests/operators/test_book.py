import pickle
from decimal import Decimal

import pytest
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
        top, stand = book.touch()
        assert top == (best or (None, None)) + (best_ask or (None, None))
        if best is None or best_ask is None or best[0] < best_ask[0]:
            assert stand == -1
        else:
            assert stand == (1 if best[0] > best_ask[0] else 0)  # crossed, locked


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(levels, levels), max_size=10), prices, quantities)
def test_seen_texts_read_as_their_decimals(updates: list, price: str, qty: str) -> None:
    book = L2Book()
    for uid, (bids, asks) in enumerate(updates, 1):
        book.apply(bids, asks, uid)
    seen = book.seen(price, qty)
    if seen is not None:  # the decimals of those very texts, as parsing gives them
        assert seen == (Decimal(price), Decimal(qty))
        assert (str(seen[0]), str(seen[1])) == (price, qty)
    book.apply([(price, qty)], [], len(updates) + 1)
    if Decimal(qty):  # a level the book keeps: its texts are known now
        assert book.seen(price, qty) == (Decimal(price), Decimal(qty))


def test_invalid_levels_are_skipped_and_counted() -> None:
    book = L2Book()
    book.apply(
        [("abc", "1"), ("10", "-1"), ("10", "NaN"), ("-5", "1"), ("9", "1")], [], 1
    )
    assert dict(book.bids) == {Decimal(9): Decimal(1)}
    assert book.invalid_levels == 4


prices_any = st.one_of(
    prices,
    st.integers(1, 400).map(lambda t: f"{t / 4:.2f}"),  # quarters: another stride
    st.integers(1, 10**6).map(str),  # far apart: edges that jump instead of walk
)
# Sizes whose integers repeat across units ("5" and "0.5" are both 5 units in turn).
sizes_any = st.one_of(quantities, st.sampled_from(["5", "0.5", "0.05", "50"]))
changes = st.lists(st.tuples(prices_any, sizes_any), max_size=6)


def _plain_bands(book: L2Book, bands: list[int]) -> list[tuple]:
    bid, ask = book.best_bid(), book.best_ask()
    if bid is None or ask is None:
        return []
    mid = (bid[0] + ask[0]) / 2
    rows = []
    for bps in sorted(bands):
        half = mid * bps / 10_000
        rows.append((bps, *book.depth_within(mid - half, mid + half)))
    return rows


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(changes, changes, st.booleans()), max_size=60),
    st.lists(st.integers(1, 3000), min_size=1, max_size=4),
    st.one_of(st.none(), st.integers(1, 8)),
)
def test_bands_kept_as_levels_change_equal_a_plain_scan(
    updates: list, bands: list[int], max_levels: int | None
) -> None:
    """Read after some updates (kept incrementally) or after many (summed afresh)."""
    book = L2Book(max_levels, bands)
    for uid, (bids, asks, read) in enumerate(updates, 1):
        book.apply(bids, asks, uid)
        if read:
            assert list(book.bands()) == _plain_bands(book, bands)
    assert list(book.bands()) == _plain_bands(book, bands)


def test_bands_survive_a_stale_spell_and_a_rescale() -> None:
    book = L2Book(None, (10, 100))
    book.apply([("99", "1"), ("98", "2")], [("101", "1"), ("102", "3")], 1)
    assert list(book.bands()) == _plain_bands(book, [10, 100])
    for uid in range(2, 80):  # no reads: the book stops keeping the sums
        book.apply([("98", str(uid))], [], uid)
    book.apply([("99.5", "0.25")], [("100.75", "1.125")], 80)  # more decimals
    assert list(book.bands()) == _plain_bands(book, [10, 100])
    book.apply([("99.5", "0")], [], 81)  # the best bid leaves: the mid moves
    assert list(book.bands()) == _plain_bands(book, [10, 100])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(changes, changes), max_size=40), st.integers(1, 6))
def test_top_sums_equal_the_decimals_of_the_best_levels(updates, depth) -> None:
    book = L2Book()
    for uid, (bids, asks) in enumerate(updates, 1):
        book.apply(bids, asks, uid)
        top_bids, top_asks = book.top(depth)
        bid_units, ask_units = book.top_sums(depth)
        assert bid_units * book.qty_unit == sum((q for _, q in top_bids), Decimal(0))
        assert ask_units * book.qty_unit == sum((q for _, q in top_asks), Decimal(0))


def test_a_pickled_book_carries_on_alike() -> None:
    book = L2Book(None, (25,))
    book.apply([("10.0", "1"), ("9.9", "2")], [("10.1", "1.5")], 1)
    book.bands()
    copy = pickle.loads(pickle.dumps(book))
    for target in (book, copy):
        target.apply([("10.05", "0.5")], [("10.1", "0")], 2)
    assert copy.bands() == book.bands() and copy.bids == book.bids


def _everything(book: L2Book) -> tuple[object, ...]:
    printed = [
        [(str(p), str(q)) for p, q in side.items()] for side in (book.bids, book.asks)
    ]
    return (
        printed,
        book.bands(),
        book.top_sums(3),
        book.best_bid(),
        book.best_ask(),
        book.qty_unit,
        (book.update_id, book.invalid_levels, book.trimmed_levels),
    )


# Texts Decimal prints back with an exponent: the pickle must keep them as printed.
printed_oddly = st.lists(
    st.tuples(
        st.one_of(prices_any, st.sampled_from(["1E+1", "2.5E1", "9.5E0"])),
        st.one_of(sizes_any, st.sampled_from(["1E+1", "5E-1", "0E-3", "2.0E2"])),
    ),
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(printed_oddly, printed_oddly), max_size=30),
    st.lists(st.tuples(printed_oddly, printed_oddly), max_size=30),
    st.one_of(st.none(), st.integers(1, 8)),
    st.booleans(),
)
def test_a_pickled_book_is_the_same_book(before, after, most, read) -> None:
    """Pickled compactly (what Bytewax snapshots), a book loads with the same
    levels as printed, units and counts, and carries on alike."""
    book = L2Book(most, (10, 100, 3000))
    for uid, (bids, asks) in enumerate(before, 1):
        book.apply(bids, asks, uid)
        if read:
            book.bands()  # kept bands: left behind by the pickle, rebuilt on read
    copy = pickle.loads(pickle.dumps(book, pickle.HIGHEST_PROTOCOL))
    assert _everything(copy) == _everything(book)
    for uid, (bids, asks) in enumerate(after, len(before) + 1):
        for target in (book, copy):
            target.apply(bids, asks, uid)
        assert _everything(copy) == _everything(book)


def test_a_book_pickled_in_another_format_is_refused_in_one_line() -> None:
    book = L2Book()
    book.apply([("10", "1")], [], 1)
    restore, args = book.__reduce__()
    with pytest.raises(ValueError, match="a book pickled in format 0; this version"):
        restore(0, *args[1:])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), changes, changes), max_size=40))
def test_books_of_different_units_share_parsed_texts_safely(updates) -> None:
    """One book sees quarters ("0.25"), the other tenths: the texts both parse mean
    different integers in each, and each book still equals its own plain model."""
    books = {True: L2Book(None, (50,)), False: L2Book(None, (50,))}
    books[True].apply([("0.25", "1.125")], [], 0)
    models: dict[bool, dict[str, dict[Decimal, Decimal]]] = {
        True: {"b": {Decimal("0.25"): Decimal("1.125")}, "a": {}},
        False: {"b": {}, "a": {}},
    }
    for uid, (which, bids, asks) in enumerate(updates, 1):
        books[which].apply(bids, asks, uid)
        for side, levels in (("b", bids), ("a", asks)):
            for price, qty in levels:
                if Decimal(qty):
                    models[which][side][Decimal(price)] = Decimal(qty)
                else:
                    models[which][side].pop(Decimal(price), None)
        for key, book in books.items():
            assert book.bids == models[key]["b"] and book.asks == models[key]["a"]
            assert list(book.bands()) == _plain_bands(book, [50])


def test_parsed_texts_stay_bounded_and_books_stay_exact() -> None:
    from bpx_flows.operators import book as book_module

    book = L2Book()
    count = book_module._TEXTS_KEPT * 3
    for i in range(1, count + 1):  # every price a new text
        book.apply([(f"{i}.5", "1")], [], i)
    for table in (book_module._PRICES, book_module._QTYS):
        assert table.size() <= 2 * book_module._TEXTS_KEPT
    assert book.bid_count == count
    assert book.best_bid() == (Decimal(f"{count}.5"), Decimal(1))
    assert book.top_sums(3) == (3, 0)  # units of 1: every size was "1"


def test_texts_that_recur_are_parsed_once_however_many_others_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A price near the touch outlives a stream of one-off sizes and prices.

    (Before, each new size parsed its level's price again, and clearing every text
    at the bound forgot the price too.)
    """
    from bpx_flows.operators import book as book_module

    parsed: list[object] = []
    plain = book_module._plain

    def counted(text: object) -> tuple[int, int] | None:
        parsed.append(text)
        return plain(text)

    monkeypatch.setattr(book_module, "_plain", counted)
    book = L2Book()
    for i in range(1, 4 * book_module._TEXTS_KEPT):
        size = f"{i}.{i % 7}"  # a new size each time
        book.apply([("9999.25", size)], [(f"{20_000 + i}.5", size)], i)
    assert parsed.count("9999.25") == 1
    assert book.best_bid() == (Decimal("9999.25"), Decimal(f"{i}.{i % 7}"))


def test_a_known_text_beside_one_that_rescales_the_book_keeps_its_value() -> None:
    """Only the unseen text of a level is parsed, and it may change the units."""
    book = L2Book()
    book.apply([("100", "2"), ("99", "1")], [("101", "3")], 1)
    book.apply([("100", "0.25")], [], 2)  # price known; sizes now in 0.01
    book.apply([("99.5", "3")], [], 3)  # size known; prices now in 0.1
    book.apply([("100", "2")], [("101", "3")], 4)  # both known, in the new units
    assert book.bids == {
        Decimal(99): Decimal(1),
        Decimal("99.5"): Decimal(3),
        Decimal(100): Decimal(2),
    }
    assert book.asks == {Decimal(101): Decimal(3)}
    assert book.top_sums(2) == (500, 300)  # units of 0.01
    assert book.touch() == ((Decimal(100), Decimal(2), Decimal(101), Decimal(3)), -1)


def test_bands_read_after_a_rescale_are_in_the_new_units() -> None:
    """Sums of 5 units before and after sizes gained a decimal are not the same."""
    book = L2Book(None, (100,))
    book.apply([("100", "5")], [("101", "1")], 1)
    assert book.bands()[0][1] == Decimal(5)
    book.apply([("50", "0.5")], [], 2)  # far outside the band: sizes now in 0.1
    book.apply([("100", "0.5")], [], 3)  # 5 units again, of 0.1
    assert book.bands()[0][1] == Decimal("0.5")
    assert list(book.bands()) == _plain_bands(book, [100])


_ODD_TEXTS = ["+1", " 1", "1 ", "1_0", "١٢", "\uff11", "1e2", "1E-3", ".5", "5.", "0.0"]
texts = st.one_of(
    st.decimals(min_value=0, max_value=10**12, places=6).map(lambda d: f"{d:f}"),
    st.decimals(min_value=0, max_value=10**6, places=3).map(lambda d: f"00{d:f}00"),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),  # exponents, NaN
    st.integers(0, 10**25).map(str),  # past the plain parse's 18 digits
    st.sampled_from(_ODD_TEXTS),
)


def _reference_level(price: str, qty: str) -> tuple[Decimal, Decimal, int] | None:
    """The level as Decimal reads it under the range policy, and its decimals."""
    try:
        p, q = Decimal(price), Decimal(qty)
    except ArithmeticError:
        return None
    if not (p.is_finite() and q.is_finite()) or q < 0 or p <= 0:
        return None
    if not (-40 < p.adjusted() < 40 and -40 < q.adjusted() < 40):
        return None
    if p.as_integer_ratio()[1] > 10**40 or q.as_integer_ratio()[1] > 10**40:
        return None
    denominator, decimals = q.as_integer_ratio()[1], 0
    while 10**decimals % denominator:  # normalize() would round to 28 digits
        decimals += 1
    return p, q, decimals


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(texts, texts), max_size=12))
def test_level_texts_read_as_decimal_reads_them(pairs: list) -> None:
    """The plain-digits parse and Decimal's agree: same levels, same invalid ones,
    the same unit (trailing zeros add no decimal)."""
    book = L2Book()
    model: dict[Decimal, Decimal] = {}
    invalid = qty_decimals = 0
    for uid, (price, qty) in enumerate(pairs, 1):
        book.apply([(price, qty)], [], uid)
        level = _reference_level(price, qty)
        if level is None:
            invalid += 1
            continue
        p, q, decimals = level
        qty_decimals = max(qty_decimals, decimals)
        if q:
            model[p] = q
        else:
            model.pop(p, None)
    assert dict(book.bids) == model
    assert book.invalid_levels == invalid
    assert book.qty_unit == Decimal(1).scaleb(-qty_decimals)


def test_band_sums_print_in_the_books_units_and_an_empty_band_as_zero() -> None:
    """The decimals' form is the output's text: in the book's units, 0 for none."""
    book = L2Book(None, (10, 1000))
    book.apply([("100.00", "1.25"), ("95.5", "0")], [("100.10", "2.50")], 1)
    (_, bid_base, bid_quote, ask_base, ask_quote), _ = book.bands()
    assert (str(bid_base), str(bid_quote)) == ("1.25", "125.000")
    assert (str(ask_base), str(ask_quote)) == ("2.50", "250.250")
    book.apply([("99.5", "1.5")], [("100.10", "0"), ("120", "1")], 2)  # mid 110
    narrow = book.bands()[0]
    assert [str(value) for value in narrow[1:]] == ["0", "0", "0", "0"]  # 10 bps: none
    assert str(book.bands()[1][1]) == "2.75"  # the wide band holds both bids
