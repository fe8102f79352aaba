"""The fixtures the budgets reuse: customs clients, papers and a guarantee (declarations), a webhook receiver."""

from __future__ import annotations

from tests.declarations.conftest import customs, guarantee, papers
from tests.webhooks.conftest import allow_private_targets, max_failures, receiver, webhook_settings

__all__ = ["allow_private_targets", "customs", "guarantee", "max_failures", "papers", "receiver", "webhook_settings"]
