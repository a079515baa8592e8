"""How numbers look on a console line: ``-`` for a missing value, fixed decimals."""

from __future__ import annotations

from typing import Any

__all__ = ["bps", "dash", "signed"]


def bps(value: Any) -> str:
    """Basis points with two decimals, ``-`` when unknown."""
    return "-" if value is None else f"{value:.2f}bps"


def signed(value: Any) -> str:
    """A signed ratio with three decimals, ``-`` when unknown."""
    return "-" if value is None else f"{value:+.3f}"


def dash(value: Any) -> str:
    """The value as printed, ``-`` when unknown."""
    return "-" if value is None else str(value)
