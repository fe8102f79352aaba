"""guarantee authorisations

Revision ID: 0007
Revises: 0006
Guarantees belong to their holder: the holder's country and the registering client on `guarantees`, and the
holder's authorisations of other declarants (access codes stored as SHA-256). Guarantees registered before this
revision take the guarantee office's country from the GRN (characters 3-4) as their holder's country.
Create Date: 2026-12-04 11:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import transit_window.db.base

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('guarantee_authorisations',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('grn', sa.String(length=24), nullable=False),
    sa.Column('declarant_id', sa.String(length=35), nullable=False),
    sa.Column('declarant_country', sa.String(length=2), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('created_by', sa.String(length=36), nullable=False),
    sa.Column('created_at', transit_window.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', transit_window.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_by', sa.String(length=36), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_guarantee_authorisations'))
    )
    with op.batch_alter_table('guarantee_authorisations', schema=None) as batch_op:
        batch_op.create_index('ix_guarantee_authorisations_grn_declarant', ['grn', 'declarant_id'], unique=False)

    with op.batch_alter_table('guarantees', schema=None) as batch_op:
        batch_op.add_column(sa.Column('holder_country', sa.String(length=2), nullable=True))
        batch_op.add_column(sa.Column('client_id', sa.String(length=36), nullable=True))
    op.execute("UPDATE guarantees SET holder_country = substr(grn, 3, 2)")
    with op.batch_alter_table('guarantees', schema=None) as batch_op:
        batch_op.alter_column('holder_country', existing_type=sa.String(length=2), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('guarantees', schema=None) as batch_op:
        batch_op.drop_column('client_id')
        batch_op.drop_column('holder_country')
    with op.batch_alter_table('guarantee_authorisations', schema=None) as batch_op:
        batch_op.drop_index('ix_guarantee_authorisations_grn_declarant')
    op.drop_table('guarantee_authorisations')
