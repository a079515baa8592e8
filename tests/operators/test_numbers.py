from decimal import Decimal

from hypothesis import given, settings, strategies as st

from bpx_flows.operators.numbers import ratio, ratio_of

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
