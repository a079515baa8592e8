"""The batch-at-a-time steps behave as the per-item operators they replace."""

from __future__ import annotations

import pickle
from typing import Any

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource, run_main

from bpx_flows.connectors.backpack.booksync import BookSnapshot
from bpx_flows.connectors.backpack.wire import Frame, MarkPrice, Trade
from bpx_flows.flows.batching import (
    _Steps,
    frames_selector,
    keyed_frames,
    stateful_steps,
    without_snapshots,
)


def _frame(data: Any) -> Frame[Any]:
    return Frame(stream=f"x.{data.s}", data=data)


def _trade(symbol: str, t: int) -> Trade:
    return Trade(E=1, s=symbol, p="1", q="1", b="1", a="2", t=t, T=1, m=True)


def _mark(symbol: str) -> MarkPrice:
    return MarkPrice(E=1, s=symbol, p="1", f="0", i="1", n=2, T=1)


def _count(state: int | None, value: Any) -> tuple[int | None, list[Any]]:
    """Counts values per key; a value of ``"forget"`` drops the state."""
    if value == "forget":
        return None, ["forgot"]
    count = (state or 0) + 1
    return count, [(value, count)]


def test_frames_are_selected_by_event_type_and_keyed_by_route() -> None:
    trades = [_frame(_trade("A", 1)), _frame(_trade("B", 2))]
    marks = [_frame(_mark("A"))]
    snapshot = BookSnapshot("depth.A", "A", 1, [], [], 0)
    batch = [trades[0], snapshot, marks[0], "other", trades[1]]
    assert frames_selector((Trade,), None)(batch) == [
        ("A", trades[0]),
        ("B", trades[1]),
    ]
    assert frames_selector((Trade, MarkPrice), {"A": "A-1"}.get)(batch[:3]) == [
        ("A-1", trades[0]),
        ("A-1", marks[0]),
    ]
    assert frames_selector((Trade,), None, events=True)(batch) == [
        ("A", trades[0].data),
        ("B", trades[1].data),
    ]


def test_steps_keep_state_per_key_forget_on_none_and_resume_from_a_snapshot() -> None:
    logic = _Steps(_count, None)
    out, discard = logic.on_batch(["a", "b", "c"])
    assert out == [("a", 1), ("b", 2), ("c", 3)] and not discard
    resumed = _Steps(_count, pickle.loads(logic.snapshot()))
    assert resumed.on_batch(["d"]) == ([("d", 4)], False)
    assert logic.on_batch(["forget"]) == (["forgot"], True)
    assert logic.on_batch(["forget", "e"]) == (["forgot", ("e", 1)], False)


def test_in_a_dataflow_the_steps_equal_stateful_flat_map() -> None:
    items = [_frame(_trade(s, i)) for i, s in enumerate("ABABBA")] + ["noise"]
    ours: list[Any] = []
    theirs: list[Any] = []
    for out, batched in ((ours, True), (theirs, False)):
        flow = Dataflow("batching")
        records = op.input("in", flow, TestingSource(items, batch_size=4))
        if batched:
            keyed = keyed_frames("keyed", records, (Trade,), events=True)
            counted = stateful_steps("count", keyed, _count)
        else:
            trades = op.filter_map(
                "trades", records, lambda r: r.data if isinstance(r, Frame) else None
            )
            keyed = op.key_on("key", trades, lambda t: t.s)
            counted = op.stateful_flat_map("count", keyed, _count)
        op.output("out", counted, TestingSink(out))
        run_main(flow)
    assert sorted(ours, key=repr) == sorted(theirs, key=repr)
    assert len(ours) == 6


def test_snapshots_are_off_only_for_flows_built_inside_without_snapshots() -> None:
    def built() -> _Steps:
        flow = Dataflow("snapshots")
        keyed = op.key_on("key", op.input("in", flow, TestingSource(["a"])), str)
        stateful_steps("count", keyed, _count)
        # The builder Bytewax calls per key, as the operator registered it.
        (step,) = [s for s in flow.substeps[-1].substeps if hasattr(s, "builder")]
        return step.builder(None)

    assert built().snapshot() is not None
    with without_snapshots():
        assert built().snapshot() is None
        with pytest.raises(RuntimeError), without_snapshots():
            raise RuntimeError
        assert built().snapshot() is None  # a nested exit leaves the outer as it was
    assert built().snapshot() is not None
