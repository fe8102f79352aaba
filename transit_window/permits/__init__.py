"""Permit documents: quotas, single-window applications, issue, use, revocation, online and offline checks."""
