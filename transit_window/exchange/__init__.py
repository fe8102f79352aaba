"""The corridor protocol's HTTP surface: `/v1/corridor/*` for the peers (inbox, pulls, trust list, witnessed
checkpoints) and `/v1/admin/*` for the node's operator (trust-list adoption, outbox, pings, audit, status).

Routers sit above both the protocol (whose logic they call) and `api` (problems, dependencies, pagination), beside
the features: the protocol itself knows no HTTP framework's routes and never imports `api`.
"""
