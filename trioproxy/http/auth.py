"""Who is calling a Quart route: the container's :class:`~trioproxy.auth.Authenticator`, at one place.

Every Quart route that needs a caller goes through :func:`identity` / :func:`caller` (and
:func:`admin` for the admin-only ones), so that what the fast path decides (``core/pipeline.py``
calls the same authenticator) and what these routes decide cannot drift apart. Route rules
(issue #12) build their caller from the same :class:`~trioproxy.auth.Identity`.
"""

from __future__ import annotations

from quart import request

from ..auth import Authenticator, Identity, UserAPIKeyAuth
from .gate import client_ip

__all__ = ["admin", "caller", "identity"]


async def identity(auth: Authenticator) -> Identity:
    """The caller of the current request, or a 401 (a 503 when the key store cannot answer)."""
    return await auth.identify(request.headers, client_ip(request.scope))


async def caller(auth: Authenticator) -> UserAPIKeyAuth:
    """The caller of the current request as hooks see it, or a 401 / 503."""
    return (await identity(auth)).user_api_key_auth()


async def admin(auth: Authenticator, what: str) -> Identity:
    """The caller, who must be a proxy admin: 401 without a valid key, 403 ``admin_only`` otherwise."""
    who = await identity(auth)
    auth.require_admin(who, what)
    return who
