"""Thin Bytewax wiring: each flow file reads like a diagram of its dataflow."""
