"""The corridor protocol: keys, JWS envelopes and receipts, the trust list, inbox, outbox, delivery and the log."""
