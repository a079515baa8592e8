"""A record's kind: the one name `--out`, Parquet datasets and Kafka headers use."""

from __future__ import annotations

import re
from typing import Any

from .backpack.wire import Frame

__all__ = ["kind_of", "kind_of_type"]

_WORD = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


_KNOWN: dict[type[Any], str] = {}  # one entry per record type: a closed set


def kind_of_type(cls: type[Any]) -> str:
    """A type's kind: its name in snake case (``BookStats`` -> ``book_stats``)."""
    kind = _KNOWN.get(cls)
    if kind is None:
        kind = _KNOWN[cls] = _WORD.sub("_", cls.__name__).lower()
    return kind


def kind_of(record: Any) -> str:
    """A record's kind: its type's, or for a frame its event's (``trade``)."""
    return kind_of_type(type(record.data if type(record) is Frame else record))
