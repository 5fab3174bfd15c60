"""team member budget windows: team_memberships.budget_duration, budget_reset_at

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

A team member's ``max_budget_in_team`` gets a ``budget_duration`` like every other budget (LiteLLM
keeps it in the member's budget row): the window starts when it is set (``budget_reset_at = now +
duration``) and the reset service and the spend writer roll it (issue #11). Both columns are
nullable, so existing memberships stay lifetime budgets.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('team_memberships') as batch:
        batch.add_column(sa.Column('budget_duration', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('budget_reset_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('team_memberships') as batch:
        batch.drop_column('budget_reset_at')
        batch.drop_column('budget_duration')
