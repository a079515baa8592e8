"""Encode simulator records into frames, in the dialect the run asks for.

- ``wire`` (default): as the live exchange sends today: integer ``E``/``T``, position
  numbers as strings, integer position id, ``r`` on order updates, and the bytes laid
  out as the exchange lays them out: ``{"data":{...},"stream":"..."}`` with the data's
  keys sorted (PROTOCOL.md's captures), so anything that scans raw frames or
  recordings meets the stream name last, after kilobytes of depth levels.
- ``spec``: exactly the AsyncAPI schema types: ``bookTicker.u`` a string, position
  numbers as JSON numbers, position id a string, no fields the spec does not list.
- ``strings``: the 2025 captures: ``E``/``T`` as decimal strings.
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Any

import msgspec

__all__ = ["Dialect", "FrameEncoder"]


class Dialect(enum.StrEnum):
    """Which form of the protocol the simulator speaks."""

    WIRE = "wire"
    SPEC = "spec"
    STRINGS = "strings"


class FrameEncoder:
    """Turns ``(stream, record)`` into the bytes of one text frame."""

    def __init__(self, dialect: Dialect = Dialect.WIRE) -> None:
        self.dialect = dialect
        self._fast = msgspec.json.Encoder()
        self._sorted = msgspec.json.Encoder(order="sorted")
        self._numbers = msgspec.json.Encoder(decimal_format="number")

    def encode(self, stream: str, record: msgspec.Struct) -> bytes:
        """One frame: ``{"data": ..., "stream": ...}`` (wire), else stream first."""
        if self.dialect is Dialect.WIRE:
            data = self._sorted.encode(record)
            return b'{"data":' + data + b',"stream":"' + stream.encode() + b'"}'
        data = self._numbers.encode(self._adapt(record))
        return b'{"stream":"' + stream.encode() + b'","data":' + data + b"}"

    def encode_data(self, record: msgspec.Struct) -> bytes:
        """A record alone (REST answers), always in the wire form."""
        return self._fast.encode(record)

    def _adapt(self, record: msgspec.Struct) -> dict[str, Any]:
        data: dict[str, Any] = msgspec.to_builtins(record, builtin_types=(Decimal,))
        if self.dialect is Dialect.STRINGS:
            for key in ("E", "T"):
                if isinstance(data.get(key), int):
                    data[key] = str(data[key])
            return _stringify_decimals(data)
        # The spec dialect: spec types, and no fields only the wire has shown.
        kind = type(record).__name__
        if kind == "BookTicker":
            data["u"] = str(data["u"])
        elif kind == "PositionUpdate":
            data["i"] = str(data["i"])
            data.pop("l", None)
        elif kind == "OrderUpdate":
            data.pop("r", None)
            if data.get("t") is None:
                data.pop("t", None)
        return data


def _stringify_decimals(data: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in data.items()}
