"""identity: keys, teams, memberships, internal users, customers, budgets

Revision ID: 0001
Revises: None
Create Date: 2026-11-30

Server defaults are written so both dialects accept them (CURRENT_TIMESTAMP, sa.false(), '{}'),
money columns are BIGINT micro-USD. Indexes are created by ``op.create_index`` after each table
(autogenerate's batch blocks removed: plain CREATE INDEX works on both dialects).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None

# JSON on SQLite (text), JSONB on PostgreSQL; frozen here rather than imported from schema.py, so
# this revision keeps meaning what it meant when it was written
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table('budgets',
    sa.Column('budget_id', sa.String(length=255), nullable=False),
    sa.Column('max_budget', sa.BigInteger(), nullable=True),
    sa.Column('soft_budget', sa.BigInteger(), nullable=True),
    sa.Column('budget_duration', sa.String(length=16), nullable=True),
    sa.Column('budget_reset_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tpm_limit', sa.BigInteger(), nullable=True),
    sa.Column('rpm_limit', sa.BigInteger(), nullable=True),
    sa.Column('max_parallel_requests', sa.Integer(), nullable=True),
    sa.Column('model_max_budget', JSON, server_default=sa.text("'{}'"), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.Column('created_by', sa.String(length=255), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.Column('updated_by', sa.String(length=255), nullable=True),
    sa.PrimaryKeyConstraint('budget_id', name=op.f('pk_budgets'))
    )
    op.create_table('internal_users',
    sa.Column('user_id', sa.String(length=255), nullable=False),
    sa.Column('user_alias', sa.String(length=255), nullable=True),
    sa.Column('user_email', sa.String(length=320), nullable=True),
    sa.Column('user_role', sa.String(length=32), server_default=sa.text("'internal_user'"), nullable=False),
    sa.Column('models', JSON, server_default=sa.text("'[]'"), nullable=False),
    sa.Column('metadata', JSON, server_default=sa.text("'{}'"), nullable=False),
    sa.Column('spend', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('max_budget', sa.BigInteger(), nullable=True),
    sa.Column('soft_budget', sa.BigInteger(), nullable=True),
    sa.Column('budget_duration', sa.String(length=16), nullable=True),
    sa.Column('budget_reset_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tpm_limit', sa.BigInteger(), nullable=True),
    sa.Column('rpm_limit', sa.BigInteger(), nullable=True),
    sa.Column('max_parallel_requests', sa.Integer(), nullable=True),
    sa.Column('model_max_budget', JSON, server_default=sa.text("'{}'"), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.Column('created_by', sa.String(length=255), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.Column('updated_by', sa.String(length=255), nullable=True),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_internal_users')),
    sa.UniqueConstraint('user_email', name=op.f('uq_internal_users_user_email'))
    )
    op.create_table('teams',
    sa.Column('team_id', sa.String(length=255), nullable=False),
    sa.Column('team_alias', sa.String(length=255), nullable=True),
    sa.Column('organization_id', sa.String(length=255), nullable=True),
    sa.Column('models', JSON, server_default=sa.text("'[]'"), nullable=False),
    sa.Column('metadata', JSON, server_default=sa.text("'{}'"), nullable=False),
    sa.Column('model_aliases', JSON, server_default=sa.text("'{}'"), nullable=False),
    sa.Column('model_rpm_limit', JSON, server_default=sa.text("'{}'"), nullable=False),
    sa.Column('model_tpm_limit', JSON, server_default=sa.text("'{}'"), nullable=False),
    sa.Column('guardrails', JSON, server_default=sa.text("'[]'"), nullable=False),
    sa.Column('spend', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('blocked', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('max_budget', sa.BigInteger(), nullable=True),
    sa.Column('soft_budget', sa.BigInteger(), nullable=True),
    sa.Column('budget_duration', sa.String(length=16), nullable=True),
    sa.Column('budget_reset_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tpm_limit', sa.BigInteger(), nullable=True),
    sa.Column('rpm_limit', sa.BigInteger(), nullable=True),
    sa.Column('max_parallel_requests', sa.Integer(), nullable=True),
    sa.Column('model_max_budget', JSON, server_default=sa.text("'{}'"), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.Column('created_by', sa.String(length=255), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.Column('updated_by', sa.String(length=255), nullable=True),
    sa.PrimaryKeyConstraint('team_id', name=op.f('pk_teams'))
    )
    op.create_index(op.f('ix_teams_team_alias'), 'teams', ['team_alias'], unique=False)
    op.create_table('team_memberships',
    sa.Column('team_id', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=16), server_default=sa.text("'user'"), nullable=False),
    sa.Column('max_budget_in_team', sa.BigInteger(), nullable=True),
    sa.Column('spend', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['teams.team_id'], name=op.f('fk_team_memberships_team_id_teams'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['internal_users.user_id'], name=op.f('fk_team_memberships_user_id_internal_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('team_id', 'user_id', name=op.f('pk_team_memberships'))
    )
    op.create_index(op.f('ix_team_memberships_user_id'), 'team_memberships', ['user_id'], unique=False)
    op.create_table('virtual_keys',
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('key_name', sa.String(length=64), nullable=False),
    sa.Column('key_alias', sa.String(length=255), nullable=True),
    sa.Column('user_id', sa.String(length=255), nullable=True),
    sa.Column('team_id', sa.String(length=255), nullable=True),
    sa.Column('organization_id', sa.String(length=255), nullable=True),
    sa.Column('budget_id', sa.String(length=255), nullable=True),
    sa.Column('models', JSON, server_default=sa.text("'[]'"), nullable=False),
    sa.Column('aliases', JSON, server_default=sa.text("'{}'"), nullable=False),
    sa.Column('config', JSON, server_default=sa.text("'{}'"), nullable=False),
    sa.Column('metadata', JSON, server_default=sa.text("'{}'"), nullable=False),
    sa.Column('permissions', JSON, server_default=sa.text("'{}'"), nullable=False),
    sa.Column('enforced_params', JSON, server_default=sa.text("'[]'"), nullable=False),
    sa.Column('guardrails', JSON, server_default=sa.text("'[]'"), nullable=False),
    sa.Column('allowed_routes', JSON, server_default=sa.text("'[]'"), nullable=False),
    sa.Column('model_rpm_limit', JSON, server_default=sa.text("'{}'"), nullable=False),
    sa.Column('model_tpm_limit', JSON, server_default=sa.text("'{}'"), nullable=False),
    sa.Column('spend', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('blocked', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('expires', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rotation_count', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('last_rotation_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('max_budget', sa.BigInteger(), nullable=True),
    sa.Column('soft_budget', sa.BigInteger(), nullable=True),
    sa.Column('budget_duration', sa.String(length=16), nullable=True),
    sa.Column('budget_reset_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tpm_limit', sa.BigInteger(), nullable=True),
    sa.Column('rpm_limit', sa.BigInteger(), nullable=True),
    sa.Column('max_parallel_requests', sa.Integer(), nullable=True),
    sa.Column('model_max_budget', JSON, server_default=sa.text("'{}'"), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.Column('created_by', sa.String(length=255), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.Column('updated_by', sa.String(length=255), nullable=True),
    sa.ForeignKeyConstraint(['team_id'], ['teams.team_id'], name=op.f('fk_virtual_keys_team_id_teams')),
    sa.PrimaryKeyConstraint('token', name=op.f('pk_virtual_keys')),
    sa.UniqueConstraint('key_alias', name=op.f('uq_virtual_keys_key_alias'))
    )
    op.create_index(op.f('ix_virtual_keys_team_id'), 'virtual_keys', ['team_id'], unique=False)
    op.create_index(op.f('ix_virtual_keys_user_id'), 'virtual_keys', ['user_id'], unique=False)
    op.create_table('deprecated_keys',
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('active_token', sa.String(length=64), nullable=False),
    sa.Column('revoke_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.ForeignKeyConstraint(['active_token'], ['virtual_keys.token'], name=op.f('fk_deprecated_keys_active_token_virtual_keys'), onupdate='CASCADE', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token', name=op.f('pk_deprecated_keys'))
    )
    op.create_index(op.f('ix_deprecated_keys_active_token'), 'deprecated_keys', ['active_token'], unique=False)
    op.create_table('end_users',
    sa.Column('user_id', sa.String(length=255), nullable=False),
    sa.Column('alias', sa.String(length=255), nullable=True),
    sa.Column('blocked', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('spend', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('allowed_model_region', sa.String(length=16), nullable=True),
    sa.Column('default_model', sa.String(length=255), nullable=True),
    sa.Column('budget_id', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.ForeignKeyConstraint(['budget_id'], ['budgets.budget_id'], name=op.f('fk_end_users_budget_id_budgets'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_end_users'))
    )


def downgrade() -> None:
    op.drop_table('end_users')
    op.drop_table('deprecated_keys')
    op.drop_table('virtual_keys')
    op.drop_table('team_memberships')
    op.drop_table('teams')
    op.drop_table('internal_users')
    op.drop_table('budgets')
