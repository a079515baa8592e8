"""Text from the peer, made safe to print."""

from __future__ import annotations

import re

__all__ = ["printable"]

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with control characters escaped, so server text cannot forge lines.

    Newlines, ANSI escapes and bidi overrides become their ``repr`` escapes: a log
    line or a tail line stays one line, and a terminal is not recoloured.
    """
    if _UNPRINTABLE.search(text) is None:
        return text
    return _UNPRINTABLE.sub(lambda m: repr(m.group())[1:-1], text)
