"""A local corridor: several nodes as separate processes on loopback, for the demo, tests and benchmarks."""
