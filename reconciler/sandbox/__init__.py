"""Faithful simulators of the vendor APIs, for the demo, the tests and the benchmarks."""
