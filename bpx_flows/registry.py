"""Every flow by name: the one list settings, the command line and docs derive from.

A new flow is its operator, its flow file (exporting ``SPEC``), and one line here.
"""

from __future__ import annotations

from bpx_flows.flows import (
    account,
    book,
    candles,
    derivatives,
    liquidations,
    market,
    tape,
)
from bpx_flows.flows.spec import FlowSpec, Section

__all__ = ["FLOWS", "SECTIONS", "flag_fields"]

FLOWS: dict[str, FlowSpec] = {
    spec.name: spec
    for spec in (
        market.SPEC,
        book.SPEC,
        candles.SPEC,
        derivatives.SPEC,
        liquidations.SPEC,
        account.SPEC,
        tape.SPEC,
    )
}


def _sections() -> dict[str, type[Section]]:
    found: dict[str, type[Section]] = {}
    for spec in FLOWS.values():
        for kind in spec.sections:
            if found.setdefault(kind.NAME, kind) is not kind:
                msg = f"two sections are named {kind.NAME!r}"
                raise RuntimeError(msg)
    return found


SECTIONS: dict[str, type[Section]] = _sections()


def flag_fields() -> dict[str, tuple[type[Section], str]]:
    """``flag -> (section, field)`` for every section field (``--every-ms``...).

    Raises:
        RuntimeError: two sections declare a field of the same name (a flag would
            be ambiguous): rename one.
    """
    import msgspec

    flags: dict[str, tuple[type[Section], str]] = {}
    for kind in SECTIONS.values():
        for field in msgspec.structs.fields(kind):
            flag = "--" + field.name.replace("_", "-")
            if flag in flags:
                msg = f"{flag} is declared by two sections: {kind.NAME}, ..."
                raise RuntimeError(msg)
            flags[flag] = (kind, field.name)
    return flags
