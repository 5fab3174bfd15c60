"""``LitellmUserRoles``: LiteLLM's proxy roles, by LiteLLM's names and values.

Handler files (custom auth, guardrails that treat admins differently) compare
``user_api_key_dict.user_role`` with these; a ``str`` enum, so ``LitellmUserRoles.PROXY_ADMIN ==
"proxy_admin"``. The master key's caller has ``user_role == "proxy_admin"`` (``master.py``).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["LitellmUserRoles"]


class LitellmUserRoles(StrEnum):
    PROXY_ADMIN = "proxy_admin"
    PROXY_ADMIN_VIEW_ONLY = "proxy_admin_viewer"
    ORG_ADMIN = "org_admin"
    INTERNAL_USER = "internal_user"
    INTERNAL_USER_VIEW_ONLY = "internal_user_viewer"
    TEAM = "team"
    CUSTOMER = "customer"
