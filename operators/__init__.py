"""Pure market logic: (state, event) -> (state, outputs); no I/O, clock or Bytewax."""
