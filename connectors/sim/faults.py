"""Faults the simulator injects: armed per run or on the fly, each firing N times."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["Fault", "FaultKind", "parse_fault"]


class FaultKind(enum.StrEnum):
    """What goes wrong."""

    DROP = "drop"  # abort the TCP connection, no Close frame (client sees 1006)
    CLOSE = "close"  # server Close 1001 "going away", as on a planned restart
    SKIP_DEPTH = "skip_depth"  # silently leave out `count` depth frames: a sequence gap
    REPEAT_DEPTH = "repeat_depth"  # send the previous `count` depth frames again
    MALFORMED = "malformed"  # one frame that is not valid JSON
    OVERSIZED = "oversized"  # one text frame of `count` bytes (a JSON string)
    STALL = "stall"  # send nothing on the connection for `seconds` (frames are lost)
    REST_STATUS = "rest_status"  # the next `count` REST depth answers are `status`
    REST_DELAY = "rest_delay"  # the next `count` REST answers wait `seconds` first


@dataclass(slots=True)
class Fault:
    """One armed fault.

    Attributes:
        kind: what goes wrong.
        after: data frames (depth frames for the depth faults) a connection must have
            received before it fires.
        count: frames skipped/repeated, or REST answers affected.
        seconds: stall or REST delay length, seconds.
        status: HTTP status for ``rest_status`` (429, 500, 503...).
        times: how many times it fires in all; storms use more than one.
    """

    kind: FaultKind
    after: int = 0
    count: int = 1
    seconds: float = 0.0
    status: int = 503
    times: int = 1


def parse_fault(spec: str | Mapping[str, str]) -> Fault:
    """Parse ``kind[:key=value,...]`` (CLI) or a query mapping (control endpoint).

    Examples: ``drop:after=500``, ``skip_depth:after=100,count=3``,
    ``rest_status:status=429,count=2``, ``stall:after=50,seconds=5``.

    Raises:
        ConfigError: unknown kind or key, or a value of the wrong type.
    """
    if isinstance(spec, str):
        kind_text, _, rest = spec.partition(":")
        items = dict(part.split("=", 1) for part in rest.split(",") if "=" in part)
    else:
        items = dict(spec)
        kind_text = items.pop("kind", "")
    try:
        kind = FaultKind(kind_text)
    except ValueError:
        choices = ", ".join(k.value for k in FaultKind)
        msg = f"unknown fault {kind_text!r}; use one of: {choices}"
        raise ConfigError(msg) from None
    fault = Fault(kind)
    for key, value in items.items():
        try:
            if key == "seconds":
                fault.seconds = float(value)
            elif key in ("after", "count", "status", "times"):
                setattr(fault, key, int(value))
            else:
                keys = "after, count, seconds, status, times"
                msg = f"fault {kind_text}: unknown key {key!r} (use {keys})"
                raise ConfigError(msg)
        except ValueError:
            msg = f"fault {kind_text}: {key}={value!r} is not a number"
            raise ConfigError(msg) from None
    return fault
