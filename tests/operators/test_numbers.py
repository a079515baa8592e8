from decimal import Decimal

from hypothesis import given, settings, strategies as st

from bpx_flows.operators.numbers import ratio, ratio_of, seen_decimal, to_decimal

big = st.integers(-(10**40), 10**40)


@settings(max_examples=500, deadline=None)
@given(big, big.filter(bool))
def test_ratio_of_integers_is_ratio_of_their_decimals(numerator, denominator) -> None:
    expected = ratio(Decimal(numerator) / Decimal(denominator))
    got = ratio_of(numerator, denominator)
    assert str(got) == str(expected)  # the same value and the same form


def test_ratio_of_rounds_half_to_even() -> None:
    assert str(ratio_of(1, 2_000_000)) == "0.000000"  # 0.0000005: to the even 0
    assert str(ratio_of(3, 2_000_000)) == "0.000002"  # 0.0000015: to the even 2
    assert str(ratio_of(-1, 3)) == "-0.333333"


@given(
    st.text(max_size=12) | st.from_regex(r"-?[0-9]{1,8}(\.[0-9]{1,8})?", fullmatch=True)
)
def test_a_seen_decimal_is_to_decimal_of_its_text(text: str) -> None:
    expected = to_decimal(text)
    for _ in range(2):  # parsed, then kept
        got = seen_decimal(text)
        assert (got is None) is (expected is None)
        if got is not None:
            assert str(got) == str(expected)  # the value and its printed form


def test_seen_decimals_are_bounded() -> None:
    from bpx_flows.operators import numbers

    for n in range(numbers._SEEN_KEPT + 10):
        seen_decimal(str(n))
    assert len(numbers._SEEN) <= numbers._SEEN_KEPT
    assert (
        seen_decimal("1.50") == Decimal("1.5") and str(seen_decimal("1.50")) == "1.50"
    )
