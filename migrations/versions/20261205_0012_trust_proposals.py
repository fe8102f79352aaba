"""trust-list proposals gathered over the corridor

Revision ID: 0012
Revises: 0011
Create Date: (issue 17)

Issue 17: a member's admin proposes a trust-list version over the corridor and the others sign it through their own
nodes; each node keeps the proposals it knows with the signatures gathered so far.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from transit_window.db.base import UTCDateTime

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'trust_proposals',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('base_version', sa.Integer(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('proposer', sa.String(length=2), nullable=False),
        sa.Column('document', sa.Text(), nullable=False),
        sa.Column('difference', sa.Text(), nullable=False),
        sa.Column('objections', sa.Text(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('closed_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('closed_reason', sa.Text(), nullable=True),
        sa.Column('reminded_at', UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_trust_proposals')),
    )
    op.create_index('ix_trust_proposals_state_version', 'trust_proposals', ['state', 'version'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_trust_proposals_state_version', table_name='trust_proposals')
    op.drop_table('trust_proposals')
