"""devices, and the device and client behind an alert

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 12:00:00.000000

E-seal devices are registered to the device client that may report for them (issue 13, finding 2); an alert
raised from a ping keeps the device and the client that sent it. Written against 0006: the integrator re-chains it
onto 0007.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import transit_window.db.base

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('devices',
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=36), nullable=False),
    sa.Column('seal_id', sa.String(length=64), nullable=True),
    sa.Column('registered_at', transit_window.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('registered_by', sa.String(length=36), nullable=False),
    sa.PrimaryKeyConstraint('device_id', name=op.f('pk_devices'))
    )
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_devices_client_id'), ['client_id'], unique=False)

    with op.batch_alter_table('tracking_alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('device_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('client_id', sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('tracking_alerts', schema=None) as batch_op:
        batch_op.drop_column('client_id')
        batch_op.drop_column('device_id')

    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_devices_client_id'))

    op.drop_table('devices')
