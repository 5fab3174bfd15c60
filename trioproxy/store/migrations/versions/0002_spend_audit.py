"""spend and audit: audit_log, spend_logs, daily_spend; virtual_keys.last_active

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

The audit log is append-only for the proxy; spend_logs.request_id is UNIQUE so a retried write
counts a request once (issue #11); spend_logs and daily_spend use an autoincrement BIGINT id
(INTEGER on SQLite, where only INTEGER PRIMARY KEY autoincrements).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# JSON on SQLite (text), JSONB on PostgreSQL; frozen here rather than imported from schema.py, so
# this revision keeps meaning what it meant when it was written
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.Column('changed_by', sa.String(length=255), server_default=sa.text("''"), nullable=False),
    sa.Column('changed_by_api_key', sa.String(length=64), server_default=sa.text("''"), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('table_name', sa.String(length=64), nullable=False),
    sa.Column('object_id', sa.String(length=255), nullable=False),
    sa.Column('before_value', JSON, nullable=True),
    sa.Column('updated_values', JSON, nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_index(op.f('ix_audit_log_table_name_object_id'), 'audit_log', ['table_name', 'object_id'], unique=False)
    op.create_index(op.f('ix_audit_log_updated_at'), 'audit_log', ['updated_at'], unique=False)
    op.create_table('spend_logs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('request_id', sa.String(length=255), nullable=False),
    sa.Column('call_type', sa.String(length=64), server_default=sa.text("''"), nullable=False),
    sa.Column('api_key', sa.String(length=64), server_default=sa.text("''"), nullable=False),
    sa.Column('spend', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('total_tokens', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('prompt_tokens', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('completion_tokens', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('start_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completion_start_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('request_duration_ms', sa.BigInteger(), nullable=True),
    sa.Column('model', sa.String(length=255), server_default=sa.text("''"), nullable=False),
    sa.Column('model_id', sa.String(length=255), nullable=True),
    sa.Column('model_group', sa.String(length=255), nullable=True),
    sa.Column('custom_llm_provider', sa.String(length=64), nullable=True),
    sa.Column('api_base', sa.Text(), nullable=True),
    sa.Column('user_id', sa.String(length=255), nullable=True),
    sa.Column('team_id', sa.String(length=255), nullable=True),
    sa.Column('organization_id', sa.String(length=255), nullable=True),
    sa.Column('end_user', sa.String(length=255), nullable=True),
    sa.Column('requester_ip_address', sa.String(length=64), nullable=True),
    sa.Column('metadata', JSON, server_default=sa.text("'{}'"), nullable=False),
    sa.Column('cache_hit', sa.String(length=8), nullable=True),
    sa.Column('cache_key', sa.String(length=255), nullable=True),
    sa.Column('request_tags', JSON, server_default=sa.text("'[]'"), nullable=False),
    sa.Column('messages', JSON, nullable=True),
    sa.Column('response', JSON, nullable=True),
    sa.Column('proxy_server_request', JSON, nullable=True),
    sa.Column('session_id', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=True),
    sa.Column('mcp_namespaced_tool_name', sa.String(length=255), nullable=True),
    sa.Column('agent_id', sa.String(length=255), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_spend_logs')),
    sa.UniqueConstraint('request_id', name=op.f('uq_spend_logs_request_id'))
    )
    op.create_index(op.f('ix_spend_logs_api_key_start_time'), 'spend_logs', ['api_key', 'start_time'], unique=False)
    op.create_index(op.f('ix_spend_logs_end_user'), 'spend_logs', ['end_user'], unique=False)
    op.create_index(op.f('ix_spend_logs_session_id'), 'spend_logs', ['session_id'], unique=False)
    op.create_index(op.f('ix_spend_logs_start_time'), 'spend_logs', ['start_time'], unique=False)
    op.create_index(op.f('ix_spend_logs_team_id'), 'spend_logs', ['team_id'], unique=False)
    op.create_index(op.f('ix_spend_logs_user_id'), 'spend_logs', ['user_id'], unique=False)
    op.create_table('daily_spend',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('entity_type', sa.String(length=16), nullable=False),
    sa.Column('entity_id', sa.String(length=255), nullable=False),
    sa.Column('date', sa.String(length=10), nullable=False),
    sa.Column('api_key', sa.String(length=64), server_default=sa.text("''"), nullable=False),
    sa.Column('model', sa.String(length=255), server_default=sa.text("''"), nullable=False),
    sa.Column('model_group', sa.String(length=255), nullable=True),
    sa.Column('custom_llm_provider', sa.String(length=64), server_default=sa.text("''"), nullable=False),
    sa.Column('prompt_tokens', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('completion_tokens', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('cache_read_input_tokens', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('cache_creation_input_tokens', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('spend', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('api_requests', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('successful_requests', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('failed_requests', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_daily_spend')),
    sa.UniqueConstraint('entity_type', 'entity_id', 'date', 'api_key', 'model', 'custom_llm_provider', name=op.f('uq_daily_spend_bucket'))
    )
    op.create_index(op.f('ix_daily_spend_date'), 'daily_spend', ['date'], unique=False)
    with op.batch_alter_table('virtual_keys') as batch_op:
        batch_op.add_column(sa.Column('last_active', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('virtual_keys') as batch_op:
        batch_op.drop_column('last_active')
    op.drop_table('daily_spend')
    op.drop_table('spend_logs')
    op.drop_table('audit_log')
