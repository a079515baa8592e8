"""The key a symbol's state is stored under: the symbol, or a routing key for it.

Bytewax sends each key to a worker by a hash of it. With few symbols the hash can
leave a worker idle, so ``bpx-flows run`` may give each symbol a routing key (the
symbol, or the symbol plus a suffix) chosen so symbols spread evenly over the workers
(``connectors.routing.balanced_routes``). Every keyed step of every flow keys through
the same ``Route``; outputs carry the real symbol, never the key.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Route"]

Route = Callable[[str], str]
