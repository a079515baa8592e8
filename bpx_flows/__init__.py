"""bpx-flows: Backpack Exchange market data on Bytewax.

The program (command line, settings, flow registry, runner) lives here; the
project's top-level folders are its subpackages: ``bpx_flows.connectors`` (I/O),
``bpx_flows.operators`` (pure logic) and ``bpx_flows.flows`` (Bytewax wiring).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bpx-flows")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
