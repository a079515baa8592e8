"""A tripwire for recovery: the shape of what the steps snapshot, against its format.

Recovery directories hold the operators' state pickled (``flows.batching``), marked
with ``STATE_FORMAT``; a run refuses a directory of another format. So a change to
the shape of a state class (or a record held in state) must come with a new format:
this test fingerprints every class of the state's modules (their fields, slots and
pickled form) and fails when the fingerprint moves while the format stays.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect

import msgspec

from bpx_flows.flows.batching import STATE_FORMAT

# The modules whose classes the flows' state holds (operators, book sync, records).
_MODULES = (
    "bpx_flows.operators.account",
    "bpx_flows.operators.book",
    "bpx_flows.operators.book_state",
    "bpx_flows.operators.bursts",
    "bpx_flows.operators.candles.book",
    "bpx_flows.operators.candles.fold",
    "bpx_flows.operators.candles.kline_check",
    "bpx_flows.operators.candles.rollup",
    "bpx_flows.operators.candles.trade_ids",
    "bpx_flows.operators.candles.windows",
    "bpx_flows.operators.derivatives",
    "bpx_flows.operators.orders",
    "bpx_flows.operators.positions",
    "bpx_flows.operators.rfqs",
    "bpx_flows.connectors.backpack.booksync",
    "bpx_flows.connectors.backpack.wire",
)

# The fingerprint of each format (only the current one is checked). When this test
# fails: bump STATE_FORMAT in flows/batching.py, say why there, and put the new
# fingerprint here. A class no state holds may change with the format kept: then
# record the new fingerprint and say which (3, re-recorded: the book module's table
# of parsed texts, ``_Parsed``/``_Tables``, a process-wide cache never pickled; a
# book pickles as before, ``test_book``'s pickle tests).
_FINGERPRINTS = {3: "02bf327cafa05290"}


def _shape(cls: type) -> str:
    if issubclass(cls, msgspec.Struct):
        fields = ",".join(cls.__struct_fields__)
    elif dataclasses.is_dataclass(cls):
        fields = ",".join(f.name for f in dataclasses.fields(cls))
    else:
        fields = ",".join(sorted(getattr(cls, "__slots__", ()) or ()))
    pickled = "reduce" if "__reduce__" in vars(cls) else ""
    state = "state" if "__getstate__" in vars(cls) else ""
    return f"{cls.__module__}.{cls.__qualname__}({fields}){pickled}{state}"


def fingerprint() -> str:
    shapes = sorted(
        _shape(cls)
        for name in _MODULES
        for _, cls in inspect.getmembers(importlib.import_module(name), inspect.isclass)
        if cls.__module__ == name
    )
    return hashlib.sha256("\n".join(shapes).encode()).hexdigest()[:16]


def test_the_state_format_moves_with_the_shape_of_the_state() -> None:
    now = fingerprint()
    assert _FINGERPRINTS.get(STATE_FORMAT) == now, (
        f"the state's classes changed shape (fingerprint {now}): bump STATE_FORMAT "
        "in flows/batching.py and record the fingerprint in this test"
    )
