"""What a flow declares about itself, once: name, settings sections, streams, wiring.

Each flow module exports one ``SPEC``; the program's registry lists them, and the
settings file, the command line and the docs are derived from the specs. A new flow is
its operator, its flow file (with its ``SPEC``) and one line in the registry.

A ``Section`` is one table of the settings file (``[book]``, ``[candles]``...),
declared in the flow file that reads it. Its fields carry their limits and help text
as ``Annotated[..., msgspec.Meta(ge=..., le=..., description=...)]``: the limits are
checked when the settings are decoded (NaN and infinities fail them too), and each
field becomes a flag of the flow's command (``every_ms`` -> ``--every-ms``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

import msgspec

if TYPE_CHECKING:
    from bytewax.dataflow import Stream

    from ..connectors.clock import WakeTimes
    from ..connectors.connection import Record as SourceRecord
    from .keys import Route

__all__ = [
    "FlowContext",
    "FlowSpec",
    "Outputs",
    "Section",
    "SymbolRule",
]


class Section(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    omit_defaults=True,
):
    """One table of the settings file, read by one or more flows.

    Subclasses set ``NAME`` (the table's name) and may override ``problems`` for
    rules that span fields or types msgspec cannot constrain (``Decimal``).
    """

    NAME: ClassVar[str]

    def problems(self) -> Iterator[tuple[str, str]]:
        """``(field, problem)`` for every value that decodes but cannot work."""
        return iter(())


S = TypeVar("S", bound=Section)

Outputs = tuple[list["Stream[Any]"], list["Stream[Any]"]]  # (records, alerts)
Records = "Stream[SourceRecord]"  # what a source emits: frames, syncs, dead letters...

SymbolRule = Literal["required", "optional", "streams"]


@dataclass(frozen=True)
class FlowContext:
    """What a flow's spec functions get: the selection and the sections' values.

    Attributes:
        symbols: the markets selected (empty: every market, where a flow allows it).
        streams: stream names (the tape only).
        sections: the value of each section, by type; a missing one is its default.
        replay: the input is a recording (event time only; no wall clock).
        route: maps a symbol to the key its state is stored under (``flows.keys``).
    """

    symbols: tuple[str, ...] = ()
    streams: tuple[str, ...] = ()
    sections: Mapping[type[Section], Section] = field(default_factory=dict)
    replay: bool = False
    route: Route | None = None

    def section(self, kind: type[S]) -> S:
        """The value of section ``kind`` (its defaults when not given)."""
        value = self.sections.get(kind)
        return value if isinstance(value, kind) else kind()


@dataclass(frozen=True)
class FlowSpec:
    """One flow, as the program sees it.

    Attributes:
        name: the flow's name: ``bpx-flows run NAME`` and the command ``NAME``.
        help: one line for ``--help`` and the docs.
        sections: the settings sections the flow reads (their fields are its flags).
        streams: the live streams for a context's selection.
        wire: the flow's steps on the input stream: ``(records, alerts)`` streams.
        produces: the record types it outputs (a sink that takes none of them does
            not fit the flow).
        symbols: ``required`` (at least one market), ``optional`` (none: every
            market) or ``streams`` (the tape: stream names instead).
        markets: ``perp`` if the flow only makes sense on perpetuals.
        check: ``(key, problem)`` for selections the flow cannot run (``None``:
            any).
        clock: the flow needs the source's ``Watermark`` records (time passing on
            quiet markets).
        history_s: how much kline history (seconds) the source fetches at start
            for the flow's kline streams (``None``: none).
        wakes: when the flow's timers come due on the wall clock, live
            (``None``: it has none, or the source need not wake for them).
        example_symbols: the markets of ``python -m bytewax.run
            bpx_flows.entry:NAME`` when ``BPX_SYMBOLS`` names none.
    """

    name: str
    help: str
    sections: tuple[type[Section], ...]
    streams: Callable[[FlowContext], list[str]]
    wire: Callable[[Stream[SourceRecord], FlowContext], Outputs]
    produces: tuple[type, ...]
    symbols: SymbolRule = "required"
    markets: Literal["any", "perp"] = "any"
    check: Callable[[FlowContext], Iterator[tuple[str, str]]] | None = None
    clock: bool = False
    history_s: Callable[[FlowContext], float] | None = None
    wakes: Callable[[FlowContext], WakeTimes | None] | None = None
    example_symbols: tuple[str, ...] = ()
