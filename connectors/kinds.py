"""A record's kind: the one name `--out`, Parquet datasets and Kafka headers use."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from .backpack.wire import Frame

__all__ = ["kind_of", "kind_of_type", "record_json"]

_encode = msgspec.json.Encoder().encode

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


def record_json(record: Any) -> bytes:
    """The record as one JSON object whose first key, ``type``, is its kind.

    What every JSON output writes (``--out``, ``jsonl:``, ``stdout:json``, Kafka
    values): ``{"type":"candle","symbol":...}``, so a reader of mixed records knows
    each one without looking at its keys.
    """
    body = _encode(record)
    if not isinstance(record, msgspec.Struct):
        return body  # not one of our records (a dict, a value): written as it is
    head = b'{"type":"' + kind_of(record).encode() + b'"'
    return head + (b"," + body[1:] if body != b"{}" else b"}")
