"""amounts to three decimals

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 15:30:00.000000

Guarantee amounts keep three decimals: the minor unit of the Kuwaiti dinar, the Bahraini dinar and the Omani rial
(ISO 4217); at two, PostgreSQL rounded a KWD guarantee of 1000.125 to 1000.13. Widening loses nothing. Going back
rounds amounts to two decimals (half away from zero on PostgreSQL, as a cast to numeric(18, 2) does).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (('guarantees', 'reference_amount', False), ('guarantees', 'reserved', False), ('movements', 'guarantee_amount', True))


def _retype(old: sa.Numeric, new: sa.Numeric) -> None:
    for table in dict.fromkeys(table for table, _, _ in COLUMNS):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column_table, column, nullable in COLUMNS:
                if column_table == table:
                    batch_op.alter_column(column, existing_type=old, type_=new, existing_nullable=nullable)


def upgrade() -> None:
    _retype(sa.Numeric(precision=18, scale=2), sa.Numeric(precision=18, scale=3))


def downgrade() -> None:
    _retype(sa.Numeric(precision=18, scale=3), sa.Numeric(precision=18, scale=2))
