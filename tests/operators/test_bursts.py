from decimal import Decimal as D

from bpx_flows.connectors.backpack.wire import Liquidation, Side
from bpx_flows.operators.bursts import (
    BurstAlert,
    BurstConfig,
    BurstPhase,
    LiquidationStats,
    Severity,
    step,
)

S = 1_000_000
T0 = 1_790_000_000_000_000  # a multiple of 10 s
CFG = BurstConfig(
    min_notional=D(1000), min_count=3, multiple=D(5), cooldown_s=30, warmup_buckets=6
)


def liq(
    at_us: int, q="1", p="100", side=Side.ASK, symbol="SOL_USDC_PERP"
) -> Liquidation:
    return Liquidation(E=at_us, q=q, p=p, S=side, s=symbol, T=at_us)


def run(events, config=CFG, state=None):
    outs = []
    for event in events:
        if isinstance(event, int):
            state, out = step(state, event, config, "SOL_USDC_PERP")
        else:
            state, out = step(state, event, config)
        outs.extend(out)
    return state, outs


def alerts(outs) -> list[BurstAlert]:
    return [o for o in outs if isinstance(o, BurstAlert)]


def test_stats_over_sliding_windows() -> None:
    _, outs = run([liq(T0, q="2"), liq(T0 + 5 * S), liq(T0 + 30 * S, q="3")])
    last = outs[-1]
    assert isinstance(last, LiquidationStats)
    assert last.notional == D(300)
    windows = {w.window_s: (w.count, w.notional) for w in last.windows}
    assert windows == {10: (1, D(300)), 60: (3, D(600)), 300: (3, D(600))}


def test_threshold_edges() -> None:
    # Exactly the floor (3 x 334 = 1002 >= 1000) and exactly min_count: a burst.
    _, outs = run([liq(T0 + k * S, p="334") for k in range(3)])
    assert [a.phase for a in alerts(outs)] == [BurstPhase.STARTED]
    # Just under the notional floor: nothing.
    _, outs = run([liq(T0 + k * S, p="333") for k in range(3)])
    assert alerts(outs) == []
    # Enough notional in too few liquidations: nothing.
    _, outs = run([liq(T0 + k * S, p="1000") for k in range(2)])
    assert alerts(outs) == []


def test_one_started_and_one_ended_alert_per_cascade() -> None:
    cascade = [
        liq(T0 + k * 300_000, p="500") for k in range(40)
    ]  # 12 s of liquidations
    _, outs = run([*cascade, T0 + 60 * S])  # a heartbeat after the cooldown
    found = alerts(outs)
    assert [a.phase for a in found] == [BurstPhase.STARTED, BurstPhase.ENDED]
    started, ended = found
    assert started.burst_id == ended.burst_id
    assert started.start_us == T0 and started.detected_us == T0 + 600_000
    assert ended.count == 40 and ended.total_notional == D(20_000)
    assert ended.end_us == T0 + 39 * 300_000
    assert ended.peak_window_notional == D(500) * 34  # 10 s at 0.3 s spacing
    assert ended.severity is Severity.HIGH  # peak 17,000 / threshold 1,000


def test_burst_does_not_end_before_the_cooldown() -> None:
    cascade = [liq(T0 + k * S, p="500") for k in range(5)]
    _, outs = run([*cascade, T0 + 4 * S + 29 * S])
    assert [a.phase for a in alerts(outs)] == [BurstPhase.STARTED]
    _, outs = run([*cascade, T0 + 4 * S + 30 * S])
    assert [a.phase for a in alerts(outs)] == [BurstPhase.STARTED, BurstPhase.ENDED]


def test_a_new_burst_after_the_cooldown_is_a_new_alert() -> None:
    first = [liq(T0 + k * S, p="500") for k in range(5)]
    second = [liq(T0 + 100 * S + k * S, p="500") for k in range(5)]
    _, outs = run([*first, *second])
    phases = [(a.phase, a.start_us) for a in alerts(outs)]
    assert phases == [
        (BurstPhase.STARTED, T0),
        (BurstPhase.ENDED, T0),
        (BurstPhase.STARTED, T0 + 100 * S),
    ]


def test_baseline_warm_up_then_a_busy_market_needs_more() -> None:
    # 10 minutes of steady flow: 3 liquidations worth 1,500 every 10 s (a busy market).
    steady = [
        liq(T0 + b * 10 * S + k * S, p="500") for b in range(60) for k in range(3)
    ]
    state, outs = run(
        steady,
        BurstConfig(min_notional=D(1000), min_count=3, multiple=D(5), warmup_buckets=6),
    )
    early = alerts(outs)
    assert early and early[0].baseline is None  # during warm-up the floors alone decide
    stats = [o for o in outs if isinstance(o, LiquidationStats)]
    assert stats[-1].baseline == D(1500)
    # After warm-up the same flow is the baseline: 5x of it (7,500) is needed now.
    state.sides[Side.ASK].burst = None
    base = T0 + 600 * S
    _, outs = run([liq(base + k * S, p="500") for k in range(9)], state=state)
    assert alerts(outs) == []
    _, outs = run(
        [liq(base + 10 * S + k * 100_000, p="500") for k in range(16)], state=state
    )
    started = alerts(outs)
    assert started and started[0].threshold == D(7500)


def test_sides_and_symbols_are_independent() -> None:
    asks = [liq(T0 + k * S, p="500") for k in range(3)]
    bids = [liq(T0 + k * S, p="200", side=Side.BID) for k in range(3)]
    _, outs = run([*asks, *bids])
    assert [(a.side, a.phase) for a in alerts(outs)] == [("ask", BurstPhase.STARTED)]
    other, _ = run([liq(T0, p="500", symbol="BTC_USDC_PERP")])
    assert other.sides[Side.ASK].burst is None


def test_quiet_flow_never_alerts() -> None:
    quiet = [liq(T0 + k * 20 * S, p="400") for k in range(200)]  # one every 20 s
    _, outs = run(quiet)
    assert alerts(outs) == []


def test_events_out_of_time_order_keep_alerts_in_time_order() -> None:
    # A cascade whose events arrive shuffled (late ones folded at the latest time
    # seen): one burst, detected after it started, ended after it was detected.
    times = [T0 + k * 300_000 for k in range(40)]
    shuffled = times[::2] + times[1::2]  # every other event, then the rest, late
    _, outs = run([*(liq(t, p="500") for t in shuffled), T0 + 60 * S])
    found = alerts(outs)
    assert [a.phase for a in found] == [BurstPhase.STARTED, BurstPhase.ENDED]
    started, ended = found
    assert started.start_us <= started.detected_us <= ended.end_us  # type: ignore[operator]
    assert ended.count == 40 and ended.total_notional == D(20_000)
    stats = [o for o in outs if isinstance(o, LiquidationStats)]
    assert sorted(s.event_us for s in stats) == times  # each event keeps its own time


def test_warm_up_lasts_six_whole_buckets_from_the_first_event() -> None:
    # The baseline needs 6 completed 10 s buckets, counted from the first event's
    # bucket: 55 s after a first event at 5 s into its bucket, not yet; at 60 s, yes.
    first = liq(T0 + 5 * S)
    _, outs = run([first, liq(T0 + 59 * S)])
    assert outs[-1].baseline is None
    _, outs = run([first, liq(T0 + 60 * S)])
    assert outs[-1].baseline == D(0)
