"""Everything that does I/O: the Backpack protocol, sources, REST, simulator, sinks."""
