"""API clients of a node (customs systems, permit authorities, forwarders, devices, operators) and their tokens."""
