"""checkpoints keep their `at` exactly as signed

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 12:00:00.000000

A witnessed checkpoint was served with its `at` re-serialised from a timestamp (`.629Z` came back as
`.629000+00:00`); the text the signer wrote is now kept beside it (issue 14, item 5). Existing rows get it from the
JWS they were stored with: a node's own checkpoint signs the body itself, a witnessed one is the envelope that
carried it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _signed_at(token: str) -> str | None:
    try:
        payload_b64 = token.split('.')[1]
        payload = json.loads(base64.urlsafe_b64decode(payload_b64 + '=' * (-len(payload_b64) % 4)))
        body = payload.get('body', payload) if payload.get('type') == 'corridor.checkpoint' else payload
        at = body['at']
    except (IndexError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return at if isinstance(at, str) and len(at) <= 40 else None


def upgrade() -> None:
    with op.batch_alter_table('checkpoints', schema=None) as batch_op:
        batch_op.add_column(sa.Column('signed_at', sa.String(length=40), nullable=True))

    connection = op.get_bind()
    checkpoints = sa.table(
        'checkpoints',
        sa.column('node', sa.String),
        sa.column('size', sa.BigInteger),
        sa.column('at', sa.String),
        sa.column('token', sa.Text),
        sa.column('signed_at', sa.String),
    )
    rows = connection.execute(sa.select(checkpoints.c.node, checkpoints.c.size, checkpoints.c.token)).all()
    for row in rows:
        connection.execute(
            sa.update(checkpoints)
            .where(checkpoints.c.node == row.node, checkpoints.c.size == row.size)
            .values(signed_at=_signed_at(row.token))
        )
    # A token that does not give it (none should): the timestamp's own text, as it was served before.
    connection.execute(
        sa.update(checkpoints).where(checkpoints.c.signed_at.is_(None)).values(signed_at=sa.cast(checkpoints.c.at, sa.String))
    )
    with op.batch_alter_table('checkpoints', schema=None) as batch_op:
        batch_op.alter_column('signed_at', existing_type=sa.String(length=40), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('checkpoints', schema=None) as batch_op:
        batch_op.drop_column('signed_at')
