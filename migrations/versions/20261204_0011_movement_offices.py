"""route movements indexed by the offices of their itinerary

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 20:00:00.000000

`GET /v1/movements/expected` read every released route movement and looked for the office in its JSON itinerary
(issue 16): now one indexed query a page. Existing route movements are indexed from their itinerary.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        'movement_offices',
        sa.Column('office', sa.String(length=8), nullable=False),
        sa.Column('mrn', sa.String(length=18), nullable=False),
        sa.PrimaryKeyConstraint('office', 'mrn', name=op.f('pk_movement_offices')),
    )
    rows = []
    for mrn, offices in op.get_bind().execute(sa.text("SELECT mrn, offices FROM movements WHERE role = 'route'")):
        listed = json.loads(offices) if isinstance(offices, str) else offices
        rows.extend({'office': office, 'mrn': mrn} for office in dict.fromkeys(listed))
    if rows:
        op.bulk_insert(table, rows)


def downgrade() -> None:
    op.drop_table('movement_offices')
