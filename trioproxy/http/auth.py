"""Who is calling a Quart route: the container's :class:`~trioproxy.auth.Authenticator`, at one place.

Every Quart route that needs a caller goes through :func:`caller` (and :func:`admin` for the
admin-only ones), so that what the fast path decides (``core/pipeline.py`` calls the same
authenticator) and what these routes decide cannot drift apart.
"""

from __future__ import annotations

from quart import request

from ..auth import Authenticator, UserAPIKeyAuth
from .gate import client_ip

__all__ = ["admin", "caller"]


def caller(auth: Authenticator) -> UserAPIKeyAuth:
    """The caller of the current request, or ``AuthenticationError`` (401)."""
    return auth.authenticate(request.headers, client_ip(request.scope))


def admin(auth: Authenticator, what: str) -> UserAPIKeyAuth:
    """The caller, who must be the proxy admin: 401 without a valid key, 403 ``admin_only`` otherwise."""
    who = caller(auth)
    auth.require_admin(who, what)
    return who
