from decimal import Decimal as D

from bpx_flows.connectors.backpack.seeds import SeededMarkPrice
from bpx_flows.connectors.backpack.wire import MarkPrice, OpenInterest
from bpx_flows.operators.derivatives import DerivativesConfig, step

S = 1_000_000
T0 = 1_790_000_000_000_000
CFG = DerivativesConfig()


def mark(
    at_us: int,
    p="100",
    f="0.0001",
    i="99.9",
    n=1_790_003_600_000,
    symbol="SOL_USDC_PERP",
) -> MarkPrice:
    return MarkPrice(E=at_us, s=symbol, p=p, T=at_us, f=f, i=i, n=n)


def oi(at_us: int, o: str) -> OpenInterest:
    return OpenInterest(E=at_us, s="SOL_USDC_PERP", o=o)


def run(events):
    state, views = None, []
    for event in events:
        state, out = step(state, event, CFG)
        views.extend(out)
    return views


def test_join_values() -> None:
    views = run([oi(T0, "1000"), mark(T0 + S)])
    view = views[-1]
    assert view.mark == D(100) and view.index == D("99.9")
    assert view.premium_bps == D("10.01")  # 0.1 / 99.9 x 10,000 = 10.010..., 2 places
    assert view.funding_rate == D("0.0001")
    assert view.funding_annualised == D("0.0001") * 24 * 365
    assert view.time_to_funding_ms == 1_790_003_600_000 - (T0 + S) // 1000
    assert view.open_interest == D(1000) and view.oi_notional == D(100_000)
    assert (view.mark_age_us, view.oi_age_us) == (0, S)
    assert not view.mark_stale and not view.oi_stale


def test_each_side_alone_gives_a_partial_view() -> None:
    first = run([mark(T0)])[0]
    assert first.open_interest is None and first.oi_notional is None and first.oi_stale
    only_oi = run([oi(T0, "5")])[0]
    assert only_oi.mark is None and only_oi.oi_notional is None and only_oi.mark_stale


def test_staleness_is_flagged_not_hidden() -> None:
    views = run([mark(T0), oi(T0 + 6 * S, "10")])
    assert views[-1].mark_stale and views[-1].mark_age_us == 6 * S
    views = run([oi(T0, "10"), mark(T0 + 181 * S)])
    assert views[-1].oi_stale and views[-1].oi_age_us == 181 * S


def test_out_of_order_events_are_ignored() -> None:
    views = run([mark(T0 + 2 * S, p="101"), mark(T0 + S, p="99")])
    assert len(views) == 1 and views[0].mark == D(101)


def test_prediction_markets_have_no_funding_or_index() -> None:
    views = run([MarkPrice(E=T0, s="TRUMPWIN_USDC_PERP", p="0.55", T=T0), oi(T0, "10")])
    view = views[0]
    assert view.mark == D("0.55")
    assert view.index is None and view.premium_bps is None
    assert view.funding_rate is None and view.funding_annualised is None
    assert view.next_funding_ms is None and view.time_to_funding_ms is None


def test_open_interest_change_over_horizons() -> None:
    events = [oi(T0 + k * 60 * S, str(1000 + 10 * k)) for k in range(62)]
    view = run(events)[-1]
    changes = {c.horizon_s: c.change for c in view.oi_changes}
    assert changes == {60: D(10), 300: D(50), 3600: D(600)}
    early = run(events[:3])[-1]
    assert {c.horizon_s: c.change for c in early.oi_changes} == {
        60: D(10),
        300: None,
        3600: None,
    }


def seeded(at_us: int, p: str = "100") -> SeededMarkPrice:
    return SeededMarkPrice(
        E=at_us, T=at_us, s="SOL_USDC_PERP", p=p, f="0.0001", i="99.9", n=1
    )


def test_a_seeded_mark_price_serves_until_the_stream_sends() -> None:
    views = run([seeded(T0, "90"), oi(T0 + S, "10")])
    assert views[-1].mark == D(90) and views[-1].mark_age_us == S
    # The seed's date is another clock's guess: a stream frame dated before it
    # still replaces it, and no later seed replaces the stream's frames.
    views = run([seeded(T0, "90"), mark(T0 - S, p="95"), seeded(T0 + 5 * S, "80")])
    assert [v.mark for v in views] == [D(90), D(95)]
    assert views[-1].mark_age_us == 0


def test_a_newer_seed_replaces_an_older_one_only() -> None:
    views = run([seeded(T0, "90"), seeded(T0 - S, "70"), seeded(T0 + S, "80")])
    assert [v.mark for v in views] == [D(90), D(80)]
