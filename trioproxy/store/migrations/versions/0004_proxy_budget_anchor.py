"""proxy budget window anchor: proxy_budget

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

``litellm_settings.budget_duration`` windows start when the budget is first set — the first start of
a proxy with that duration — instead of being aligned to the UTC clock (issue #11's rule for every
budget). The anchor lives in the database so every instance and every restart shares it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('proxy_budget',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('budget_duration', sa.String(length=16), nullable=False),
    sa.Column('budget_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_proxy_budget'))
    )


def downgrade() -> None:
    op.drop_table('proxy_budget')
