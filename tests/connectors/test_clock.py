"""Wake times: the first one after any instant, whatever the offsets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from bpx_flows.connectors.clock import WakeTimes

SECOND = 1_000_000


def test_the_next_wake_is_the_first_offset_after_the_instant() -> None:
    wakes = WakeTimes(SECOND, (201_000, 250_500, 1_203_000))  # 1_203_000: 203_000
    assert wakes.offsets_us == (201_000, 203_000, 250_500)
    start = 1_765_000_000 * SECOND
    assert wakes.next_after(start) == start + 201_000
    assert wakes.next_after(start + 201_000) == start + 203_000  # strictly after
    assert wakes.next_after(start + 250_500) == start + SECOND + 201_000
    assert wakes.next_after(start - 1) == start + 201_000


@pytest.mark.parametrize(("period", "offsets"), [(0, (1,)), (-5, (1,)), (SECOND, ())])
def test_no_wake_times_is_refused(period: int, offsets: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="no wake times"):
        WakeTimes(period, offsets)


@settings(max_examples=300, deadline=None)
@given(
    period=st.integers(1, 10**8),
    offsets=st.lists(st.integers(0, 10**9), min_size=1, max_size=8),
    at=st.integers(0, 2 * 10**15),
)
def test_no_wake_time_is_skipped(period: int, offsets: list[int], at: int) -> None:
    wakes = WakeTimes(period, tuple(offsets))
    after = wakes.next_after(at)
    assert at < after <= at + period
    phases = {o % period for o in offsets}
    assert after % period in phases
    # Nothing due in between: every wake time in (at, after) would be one.
    for phase in phases:
        first = at - at % period + phase
        if first <= at:
            first += period
        assert first >= after
