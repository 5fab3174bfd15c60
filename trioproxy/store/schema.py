"""The store's schema: one SQLAlchemy Core ``MetaData`` for SQLite and PostgreSQL.

This module is the *current* shape of the database; the Alembic revisions in ``migrations/``
build it step by step, and ``tests/store/test_store_migrations.py`` checks on both backends that
migrating an empty database ends exactly here (Alembic's autogenerate comparison finds nothing).

Rules that keep one schema honest on both dialects (state-layer.md §4):

* **Money is integer micro-USD** (``BIGINT``): ``max_budget``, ``soft_budget``, ``spend``,
  ``max_budget_in_team``. SQLite's NUMERIC is a float; integers agree to the unit everywhere.
* **Server defaults that both dialects accept**: ``CURRENT_TIMESTAMP`` (never ``now()``, which
  SQLite lacks), ``sa.false()`` (rendered ``false`` / ``0``), ``'{}'`` / ``'[]'`` for JSON.
* **Autoincrement BIGINT keys** need ``BigInteger().with_variant(Integer, "sqlite")``: only
  ``INTEGER PRIMARY KEY`` is a rowid alias in SQLite.
* **A naming convention** on the MetaData, so every constraint has a stable name that a later
  migration can drop or alter (SQLite batch mode needs the names).
* JSON columns are ``JSON`` on SQLite (text) and ``JSONB`` on PostgreSQL.
* Times are ``TIMESTAMP WITH TIME ZONE`` on PostgreSQL and SQLAlchemy's text form
  (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC) on SQLite; the store always writes UTC.

Table names are our own (the audit log's ``table_name`` uses LiteLLM's names for compatibility:
:data:`LITELLM_TABLE_NAMES`). A surrogate ``id`` is the primary key of append-heavy tables;
``spend_logs.request_id`` is UNIQUE so a retried write cannot count a request twice (issue #11).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

__all__ = [
    "LITELLM_TABLE_NAMES",
    "VERSION_TABLE",
    "audit_log",
    "budgets",
    "daily_spend",
    "deprecated_keys",
    "end_users",
    "internal_users",
    "metadata",
    "spend_logs",
    "team_memberships",
    "teams",
    "virtual_keys",
]

#: Alembic's bookkeeping table, named so it cannot clash with an application sharing the database
VERSION_TABLE = "trioproxy_alembic_version"

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Time = sa.DateTime(timezone=True)
Money = sa.BigInteger           # micro-USD
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

NOW = sa.text("CURRENT_TIMESTAMP")
EMPTY_OBJECT = sa.text("'{}'")
EMPTY_LIST = sa.text("'[]'")
ZERO = sa.text("0")


def _created_updated() -> list[sa.Column]:
    return [
        sa.Column("created_at", Time, nullable=False, server_default=NOW),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("updated_at", Time, nullable=False, server_default=NOW),
        sa.Column("updated_by", sa.String(255), nullable=True),
    ]


def _limits() -> list[sa.Column]:
    """Budget and rate-limit fields shared by keys, users, teams and budget rows."""
    return [
        sa.Column("max_budget", Money, nullable=True),
        sa.Column("soft_budget", Money, nullable=True),
        sa.Column("budget_duration", sa.String(16), nullable=True),
        sa.Column("budget_reset_at", Time, nullable=True),
        sa.Column("tpm_limit", sa.BigInteger, nullable=True),
        sa.Column("rpm_limit", sa.BigInteger, nullable=True),
        sa.Column("max_parallel_requests", sa.Integer, nullable=True),
        sa.Column("model_max_budget", JSON, nullable=False, server_default=EMPTY_OBJECT),
    ]


# --- revision 0001: identity -------------------------------------------------------------------

budgets = sa.Table(
    "budgets", metadata,
    sa.Column("budget_id", sa.String(255), primary_key=True),
    *_limits(),
    *_created_updated(),
)

internal_users = sa.Table(
    "internal_users", metadata,
    sa.Column("user_id", sa.String(255), primary_key=True),
    sa.Column("user_alias", sa.String(255), nullable=True),
    sa.Column("user_email", sa.String(320), nullable=True, unique=True),
    sa.Column("user_role", sa.String(32), nullable=False, server_default=sa.text("'internal_user'")),
    sa.Column("models", JSON, nullable=False, server_default=EMPTY_LIST),
    sa.Column("metadata", JSON, nullable=False, server_default=EMPTY_OBJECT),
    sa.Column("spend", Money, nullable=False, server_default=ZERO),
    *_limits(),
    *_created_updated(),
)

teams = sa.Table(
    "teams", metadata,
    sa.Column("team_id", sa.String(255), primary_key=True),
    sa.Column("team_alias", sa.String(255), nullable=True, index=True),
    sa.Column("organization_id", sa.String(255), nullable=True),
    sa.Column("models", JSON, nullable=False, server_default=EMPTY_LIST),
    sa.Column("metadata", JSON, nullable=False, server_default=EMPTY_OBJECT),
    sa.Column("model_aliases", JSON, nullable=False, server_default=EMPTY_OBJECT),
    sa.Column("model_rpm_limit", JSON, nullable=False, server_default=EMPTY_OBJECT),
    sa.Column("model_tpm_limit", JSON, nullable=False, server_default=EMPTY_OBJECT),
    sa.Column("guardrails", JSON, nullable=False, server_default=EMPTY_LIST),
    sa.Column("spend", Money, nullable=False, server_default=ZERO),
    sa.Column("blocked", sa.Boolean, nullable=False, server_default=sa.false()),
    *_limits(),
    *_created_updated(),
)

team_memberships = sa.Table(
    "team_memberships", metadata,
    sa.Column("team_id", sa.String(255), sa.ForeignKey("teams.team_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("user_id", sa.String(255), sa.ForeignKey("internal_users.user_id", ondelete="CASCADE"),
              primary_key=True, index=True),
    sa.Column("role", sa.String(16), nullable=False, server_default=sa.text("'user'")),
    sa.Column("max_budget_in_team", Money, nullable=True),
    # the member's window (LiteLLM keeps it in the member's budget row): None = lifetime
    sa.Column("budget_duration", sa.String(16), nullable=True),
    sa.Column("budget_reset_at", Time, nullable=True),
    sa.Column("spend", Money, nullable=False, server_default=ZERO),
    sa.Column("created_at", Time, nullable=False, server_default=NOW),
)

virtual_keys = sa.Table(
    "virtual_keys", metadata,
    # SHA-256 hex of the clear key: the clear key itself is never stored
    sa.Column("token", sa.String(64), primary_key=True),
    sa.Column("key_name", sa.String(64), nullable=False),          # "sk-...abcd"
    sa.Column("key_alias", sa.String(255), nullable=True, unique=True),
    sa.Column("user_id", sa.String(255), nullable=True, index=True),
    sa.Column("team_id", sa.String(255), sa.ForeignKey("teams.team_id"), nullable=True, index=True),
    sa.Column("organization_id", sa.String(255), nullable=True),
    sa.Column("budget_id", sa.String(255), nullable=True),
    sa.Column("models", JSON, nullable=False, server_default=EMPTY_LIST),
    sa.Column("aliases", JSON, nullable=False, server_default=EMPTY_OBJECT),
    sa.Column("config", JSON, nullable=False, server_default=EMPTY_OBJECT),
    sa.Column("metadata", JSON, nullable=False, server_default=EMPTY_OBJECT),
    sa.Column("permissions", JSON, nullable=False, server_default=EMPTY_OBJECT),
    sa.Column("enforced_params", JSON, nullable=False, server_default=EMPTY_LIST),
    sa.Column("guardrails", JSON, nullable=False, server_default=EMPTY_LIST),
    sa.Column("allowed_routes", JSON, nullable=False, server_default=EMPTY_LIST),
    sa.Column("model_rpm_limit", JSON, nullable=False, server_default=EMPTY_OBJECT),
    sa.Column("model_tpm_limit", JSON, nullable=False, server_default=EMPTY_OBJECT),
    sa.Column("spend", Money, nullable=False, server_default=ZERO),
    sa.Column("blocked", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("expires", Time, nullable=True),
    sa.Column("rotation_count", sa.Integer, nullable=False, server_default=ZERO),
    sa.Column("last_rotation_at", Time, nullable=True),
    *_limits(),
    *_created_updated(),
    # revision 0002
    sa.Column("last_active", Time, nullable=True),
)

# old hashes of rotated keys that stay valid until revoke_at (``grace_period``)
deprecated_keys = sa.Table(
    "deprecated_keys", metadata,
    sa.Column("token", sa.String(64), primary_key=True),
    sa.Column("active_token", sa.String(64),
              sa.ForeignKey("virtual_keys.token", ondelete="CASCADE", onupdate="CASCADE"),
              nullable=False, index=True),
    sa.Column("revoke_at", Time, nullable=False),
    sa.Column("created_at", Time, nullable=False, server_default=NOW),
)

end_users = sa.Table(
    "end_users", metadata,
    sa.Column("user_id", sa.String(255), primary_key=True),
    sa.Column("alias", sa.String(255), nullable=True),
    sa.Column("blocked", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("spend", Money, nullable=False, server_default=ZERO),
    sa.Column("allowed_model_region", sa.String(16), nullable=True),
    sa.Column("default_model", sa.String(255), nullable=True),
    sa.Column("budget_id", sa.String(255), sa.ForeignKey("budgets.budget_id", ondelete="SET NULL"),
              nullable=True),
    sa.Column("created_at", Time, nullable=False, server_default=NOW),
    sa.Column("updated_at", Time, nullable=False, server_default=NOW),
)

# --- revision 0002: audit and spend ------------------------------------------------------------

audit_log = sa.Table(
    "audit_log", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("updated_at", Time, nullable=False, server_default=NOW, index=True),
    sa.Column("changed_by", sa.String(255), nullable=False, server_default=sa.text("''")),
    sa.Column("changed_by_api_key", sa.String(64), nullable=False, server_default=sa.text("''")),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("table_name", sa.String(64), nullable=False),
    sa.Column("object_id", sa.String(255), nullable=False),
    sa.Column("before_value", JSON, nullable=True),
    sa.Column("updated_values", JSON, nullable=True),
    sa.Index(None, "table_name", "object_id"),
)

spend_logs = sa.Table(
    "spend_logs", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(255), nullable=False, unique=True),
    sa.Column("call_type", sa.String(64), nullable=False, server_default=sa.text("''")),
    sa.Column("api_key", sa.String(64), nullable=False, server_default=sa.text("''")),   # the key's hash
    sa.Column("spend", Money, nullable=False, server_default=ZERO),
    sa.Column("total_tokens", sa.BigInteger, nullable=False, server_default=ZERO),
    sa.Column("prompt_tokens", sa.BigInteger, nullable=False, server_default=ZERO),
    sa.Column("completion_tokens", sa.BigInteger, nullable=False, server_default=ZERO),
    sa.Column("start_time", Time, nullable=False, index=True),            # LiteLLM: startTime
    sa.Column("end_time", Time, nullable=False),                          # LiteLLM: endTime
    sa.Column("completion_start_time", Time, nullable=True),              # LiteLLM: completionStartTime
    sa.Column("request_duration_ms", sa.BigInteger, nullable=True),
    sa.Column("model", sa.String(255), nullable=False, server_default=sa.text("''")),
    sa.Column("model_id", sa.String(255), nullable=True),
    sa.Column("model_group", sa.String(255), nullable=True),
    sa.Column("custom_llm_provider", sa.String(64), nullable=True),
    sa.Column("api_base", sa.Text, nullable=True),
    sa.Column("user_id", sa.String(255), nullable=True, index=True),      # LiteLLM: user
    sa.Column("team_id", sa.String(255), nullable=True, index=True),
    sa.Column("organization_id", sa.String(255), nullable=True),
    sa.Column("end_user", sa.String(255), nullable=True, index=True),
    sa.Column("requester_ip_address", sa.String(64), nullable=True),
    sa.Column("metadata", JSON, nullable=False, server_default=EMPTY_OBJECT),
    sa.Column("cache_hit", sa.String(8), nullable=True),
    sa.Column("cache_key", sa.String(255), nullable=True),
    sa.Column("request_tags", JSON, nullable=False, server_default=EMPTY_LIST),
    sa.Column("messages", JSON, nullable=True),
    sa.Column("response", JSON, nullable=True),
    sa.Column("proxy_server_request", JSON, nullable=True),
    sa.Column("session_id", sa.String(255), nullable=True, index=True),
    sa.Column("status", sa.String(16), nullable=True),
    sa.Column("mcp_namespaced_tool_name", sa.String(255), nullable=True),
    sa.Column("agent_id", sa.String(255), nullable=True),
    sa.Index(None, "api_key", "start_time"),
)

# per entity, per UTC day, per key and model: what dashboards and budget resets read (issue #11)
daily_spend = sa.Table(
    "daily_spend", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("entity_type", sa.String(16), nullable=False),   # key | user | team | end_user | tag
    sa.Column("entity_id", sa.String(255), nullable=False),
    sa.Column("date", sa.String(10), nullable=False),          # YYYY-MM-DD, UTC
    sa.Column("api_key", sa.String(64), nullable=False, server_default=sa.text("''")),
    sa.Column("model", sa.String(255), nullable=False, server_default=sa.text("''")),
    sa.Column("model_group", sa.String(255), nullable=True),
    sa.Column("custom_llm_provider", sa.String(64), nullable=False, server_default=sa.text("''")),
    sa.Column("prompt_tokens", sa.BigInteger, nullable=False, server_default=ZERO),
    sa.Column("completion_tokens", sa.BigInteger, nullable=False, server_default=ZERO),
    sa.Column("cache_read_input_tokens", sa.BigInteger, nullable=False, server_default=ZERO),
    sa.Column("cache_creation_input_tokens", sa.BigInteger, nullable=False, server_default=ZERO),
    sa.Column("spend", Money, nullable=False, server_default=ZERO),
    sa.Column("api_requests", sa.BigInteger, nullable=False, server_default=ZERO),
    sa.Column("successful_requests", sa.BigInteger, nullable=False, server_default=ZERO),
    sa.Column("failed_requests", sa.BigInteger, nullable=False, server_default=ZERO),
    sa.Column("created_at", Time, nullable=False, server_default=NOW),
    sa.Column("updated_at", Time, nullable=False, server_default=NOW),
    sa.UniqueConstraint("entity_type", "entity_id", "date", "api_key", "model", "custom_llm_provider",
                        name=sa.schema.conv("uq_daily_spend_bucket")),
    sa.Index(None, "date"),
)

# the proxy-wide budget's window anchor (litellm_settings.max_budget / budget_duration, issue #11):
# the config has no "set" moment, so the first start with a duration is stored here and every
# process and restart steps windows from it (a changed duration starts a new sequence)
proxy_budget = sa.Table(
    "proxy_budget", metadata,
    sa.Column("id", sa.String(32), primary_key=True),           # "proxy"
    sa.Column("budget_duration", sa.String(16), nullable=False),
    sa.Column("budget_start", Time, nullable=False),             # start of the first window
    sa.Column("updated_at", Time, nullable=False, server_default=NOW),
)

#: our table → the name LiteLLM's audit log uses (``LitellmTableNames``)
LITELLM_TABLE_NAMES = {
    "virtual_keys": "LiteLLM_VerificationToken",
    "teams": "LiteLLM_TeamTable",
    "team_memberships": "LiteLLM_TeamMembership",
    "internal_users": "LiteLLM_UserTable",
    "end_users": "LiteLLM_EndUserTable",
    "budgets": "LiteLLM_BudgetTable",
}
