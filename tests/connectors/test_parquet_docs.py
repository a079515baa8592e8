"""docs/parquet.md lists every kind's columns exactly as the sink writes them."""

from __future__ import annotations

import re
from pathlib import Path

from bpx_flows.connectors.sinks.parquet import schema_of, type_name
from bpx_flows.registry import FLOWS

DOC = Path(__file__).parent.parent.parent / "docs" / "parquet.md"
BEGIN, END = "<!-- schemas: begin -->", "<!-- schemas: end -->"


def schema_tables() -> str:
    """The schema section of docs/parquet.md, from the flows' record types."""
    produced: dict[type, list[str]] = {}
    for name, spec in FLOWS.items():
        if name != "tape":  # frames: one dataset per event type, wire fields
            for kind in spec.produces:
                produced.setdefault(kind, []).append(name)
    parts = []
    for kind, flows in produced.items():
        dataset = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", kind.__name__).lower()
        rows = "\n".join(
            f"| `{column}` | {type_name(dtype)} |"
            for column, dtype in schema_of(kind).items()
        )
        parts.append(
            f"### `{dataset}`: {kind.__name__} ({', '.join(flows)})\n\n"
            f"| column | type |\n| --- | --- |\n{rows}\n"
        )
    return "\n".join(parts)


def test_the_docs_list_every_kind_and_column() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert section.strip() == schema_tables().strip(), (
        "docs/parquet.md is out of date: python -c 'from tests.connectors."
        "test_parquet_docs import schema_tables; print(schema_tables())'"
    )
