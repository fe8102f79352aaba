"""Load and chaos machinery for the suite and bench/: a live corridor of node processes on its own PostgreSQL
cluster, a workload of trucks, faults, and the invariants checked after. Not part of the installed product: only
what `transit-window demo` and `corridor up` need stays in `transit_window/corridor/`."""
