"""Flag values checked as they are parsed, for the commands outside the settings.

The flow commands' flags become settings and are checked there (``settings``); the
simulator's commands take theirs here. A bad value is one line and exit code 2, as
for every other bad input (``OneLineParser``).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import NoReturn

__all__ = ["OneLineParser", "number", "port"]


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr, exit code 2."""

    def error(self, message: str) -> NoReturn:
        """Say what is wrong in one line (``--help`` shows the usage)."""
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def port(text: str) -> int:
    """A TCP port, 0 (any free one) to 65535."""
    try:
        value = int(text)
    except ValueError:
        msg = f"expected a port number, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if not 0 <= value <= 65535:
        msg = f"a port is 0-65535 (0: any free port), got {value}"
        raise argparse.ArgumentTypeError(msg)
    return value


def number(
    low: float, high: float, *, low_open: bool = False, whole: bool = False
) -> Callable[[str], float]:
    """A converter for a finite number in ``[low, high]`` (``(low, high]``: open)."""

    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        inside = (low < value if low_open else low <= value) and value <= high
        if not inside or (whole and not value.is_integer()):
            left = "(" if low_open else "["
            kind = "a whole number" if whole else "a number"
            span = f"{int(low)}, {int(high)}" if whole else f"{low:g}, {high:g}"
            msg = f"expected {kind} in {left}{span}], got {text!r}"
            raise argparse.ArgumentTypeError(msg)
        return int(value) if whole else value

    return convert
