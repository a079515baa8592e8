"""Steps that work a batch at a time: Bytewax's cost is per batch, not per item.

Every record of the feed passes each part's selection step, and most pass a keyed
state step; Bytewax's per-item operators wrap each record in three or four Python
calls (a generator, a shim, the user function), which over the whole feed costs as
much as the analytics. These two steps do the same with one call per batch:

- ``keyed_frames``: the frames carrying given event types, keyed by symbol;
- ``stateful_steps``: a pure ``(state, value) -> (state, outputs)`` per key, like
  ``stateful_flat_map`` (``None`` state forgets the key), snapshotting by pickling
  (one C call) instead of a deep copy.
"""

from __future__ import annotations

import contextlib
import pickle
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Stream, operator
from bytewax.operators import StatefulBatchLogic

from ..connectors.backpack.wire import Frame
from ..connectors.connection import Record as SourceRecord
from .keys import Route

__all__ = [
    "STATE_FORMAT",
    "Split",
    "frames_selector",
    "keyed_frames",
    "split_outputs",
    "stateful_steps",
    "without_snapshots",
]

Step = Callable[[Any, Any], tuple[Any, Iterable[Any]]]
# (when the key wants waking, wall-clock µs or None; what it emits then at now µs)
Clock = tuple[Callable[[Any], int | None], Callable[[Any, int], tuple[Any, list[Any]]]]
Eof = Callable[[Any], tuple[Any, list[Any]]]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def frames_selector(
    kinds: tuple[type, ...], route: Route | None, events: bool = False
) -> Callable[[list[Any]], list[tuple[str, Any]]]:
    """A batch function keying the frames that carry one of ``kinds``.

    It returns ``(key, frame)`` for each, keyed by the event's symbol ``s`` (routed),
    or ``(key, event)`` with ``events``.
    """
    wanted = frozenset(kinds)
    key = route or str

    def select(batch: list[Any]) -> list[tuple[str, Any]]:
        if events:
            return [
                (key(r.data.s), r.data)
                for r in batch
                if type(r) is Frame and type(r.data) in wanted
            ]
        return [
            (key(r.data.s), r)
            for r in batch
            if type(r) is Frame and type(r.data) in wanted
        ]

    return select


@operator
def keyed_frames(
    step_id: str,
    records: Stream[SourceRecord],
    kinds: tuple[type, ...],
    route: Route | None = None,
    events: bool = False,
) -> Stream[tuple[str, Any]]:
    """The frames of ``records`` carrying one of ``kinds``, keyed by symbol (routed).

    With ``events`` the event itself is emitted instead of its frame.
    """
    return op.flat_map_batch("select", records, frames_selector(kinds, route, events))


# What the steps' snapshots hold: the operators' state objects, pickled. Bump it when
# one of them changes shape (fields, a class's pickled form): a recovery directory
# written in another format is refused, not loaded into state it does not fit.
# 2: integer books pickled compactly (1: every directory before this mark existed).
# 3: the candle flow's base windows are its own step (``operators.candles.windows``),
# no longer Bytewax's ``fold_window`` state.
STATE_FORMAT = 3

_BUILDING = threading.local()  # what the flow being built in this thread wants


@contextlib.contextmanager
def without_snapshots() -> Iterator[None]:
    """Steps of flows built inside keep no snapshots: nothing will recover from them.

    Bytewax asks every stateful step for a snapshot at each epoch's end, with
    recovery or without. Pickling a 1,000-level book takes ~7 ms, and every key's
    state is pickled at once: a stall of the worker each epoch, in the latency tail,
    for nothing when no recovery directory keeps them. ``wiring.wire(...,
    snapshots=False)`` builds inside this: the runner's flow, unless it has one.
    """
    before = getattr(_BUILDING, "snapshots", True)
    _BUILDING.snapshots = False
    try:
        yield
    finally:
        _BUILDING.snapshots = before


class _Steps(StatefulBatchLogic[Any, Any, bytes | None]):
    """Runs a pure step over each batch of one key's values.

    With a ``clock`` (``(when, on_time)``), ``when(state)`` is the wall-clock time
    (µs) the key wants to be woken at, and ``on_time(state, now_us)`` what it
    emits then: Bytewax wakes the key at that time even if no value comes. With
    ``eof``, ``eof(state)`` is what the key emits when the input ends.
    """

    def __init__(
        self,
        step: Step,
        state: Any,
        clock: Clock | None = None,
        snapshots: bool = True,
        eof: Eof | None = None,
    ) -> None:
        self._step = step
        self._state = state
        self._clock = clock
        self._snapshots = snapshots
        self._eof = eof

    def on_batch(self, values: list[Any]) -> tuple[list[Any], bool]:
        step, state = self._step, self._state
        out: list[Any] = []
        for value in values:
            state, emitted = step(state, value)
            out.extend(emitted)
        self._state = state
        return out, state is None

    def notify_at(self) -> datetime | None:
        if self._clock is None:
            return None
        at_us = self._clock[0](self._state)
        return None if at_us is None else _EPOCH + timedelta(microseconds=at_us)

    def on_notify(self) -> tuple[list[Any], bool]:
        assert self._clock is not None
        self._state, out = self._clock[1](self._state, time.time_ns() // 1000)
        return out, self._state is None

    def on_eof(self) -> tuple[list[Any], bool]:
        if self._eof is None:
            return [], False
        self._state, out = self._eof(self._state)
        return out, self._state is None

    def snapshot(self) -> bytes | None:
        if not self._snapshots:
            return None  # built without_snapshots(): no recovery reads it
        # Bytes are immutable, so later steps cannot change what was snapshotted.
        return pickle.dumps(self._state, pickle.HIGHEST_PROTOCOL)


@operator
def stateful_steps(
    step_id: str,
    keyed: Stream[tuple[str, Any]],
    step: Step,
    clock: Clock | None = None,
    eof: Eof | None = None,
) -> Stream[tuple[str, Any]]:
    """``step(state, value) -> (state, outputs)`` per key, a batch at a time.

    ``clock``: also wake each key when it asks; ``eof``: what each key emits when
    the input ends (see ``_Steps``).
    """
    snapshots = getattr(_BUILDING, "snapshots", True)

    def build(resume: bytes | None) -> _Steps:
        if isinstance(resume, bytes):
            return _Steps(step, pickle.loads(resume), clock, snapshots, eof)
        # None, or a state snapshotted unpickled
        return _Steps(step, resume, clock, snapshots, eof)

    return op.stateful_batch("steps", keyed, build)


@dataclass(frozen=True)
class Split:
    """``split_outputs``' two streams."""

    matching: Stream[Any]
    others: Stream[Any]


@operator
def split_outputs(
    step_id: str,
    keyed: Stream[tuple[str, Any]],
    kind: type,
    stamp: Callable[[list[Any]], list[Any]] | None = None,
) -> Split:
    """The values of ``(key, value)`` pairs split by type: ``kind`` or not.

    ``stamp`` maps each batch of ``kind`` values (e.g. one clock reading for the
    whole batch). Two calls per batch, where ``map`` + ``branch`` + ``map`` made three
    per item.
    """

    def matching(batch: list[tuple[str, Any]]) -> list[Any]:
        values = [value for _, value in batch if type(value) is kind]
        return stamp(values) if stamp is not None and values else values

    def others(batch: list[tuple[str, Any]]) -> list[Any]:
        return [value for _, value in batch if type(value) is not kind]

    return Split(
        op.flat_map_batch("matching", keyed, matching),
        op.flat_map_batch("others", keyed, others),
    )
