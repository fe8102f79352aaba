"""The corridor protocol: keys, JWS envelopes and receipts, the trust list, inbox, outbox, delivery and the log."""

# The largest integer every JSON parser reads exactly (I-JSON, RFC 7493 §2.2: 2^53 - 1): the bound of the integers
# of the protocol's own fields (`seq`, `trust`, a trust list's `version`, a checkpoint's `size`, a pull's `after_seq`).
MAX_JSON_INTEGER = 2**53 - 1
