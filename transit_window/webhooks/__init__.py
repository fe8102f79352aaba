"""Webhooks (Standard Webhooks): subscriptions to tracking events, a durable signed delivery queue, the SSRF guard."""
