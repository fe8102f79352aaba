"""Composition: every table of the node, imported in one place so Alembic and tests see the whole schema (above the
features, so `db` knows none of them)."""

from transit_window.clients import models as clients_models
from transit_window.db.base import Base
from transit_window.declarations import models as declarations_models
from transit_window.documents import models as documents_models
from transit_window.permits import models as permits_models
from transit_window.protocol import models as protocol_models
from transit_window.tracking import models as tracking_models
from transit_window.webhooks import models as webhook_models

metadata = Base.metadata

__all__ = [
    "clients_models",
    "declarations_models",
    "documents_models",
    "metadata",
    "permits_models",
    "protocol_models",
    "tracking_models",
    "webhook_models",
]
