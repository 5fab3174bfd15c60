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

__all__ = ["IDENTITY", "admin", "caller", "identity"]


#: the scope key where the app's ``before_request`` leaves the identity the route decision used
IDENTITY = "trioproxy.identity"


async def identity(auth: Authenticator) -> Identity:
    """The caller of the current request, or a 401 (a 503 when the key store cannot answer).

    Normally the identity the route decision already established (``app.py``'s ``before_request``,
    kept in the scope): authenticated once per request. An anonymous caller (a public route, no
    key) is returned as such; the handler's own checks refuse it whatever it asks for."""
    who = request.scope.get(IDENTITY)
    if who is not None:
        return who  # type: ignore[no-any-return]
    return await auth.identify(request.headers, client_ip(request.scope))


async def caller(auth: Authenticator) -> UserAPIKeyAuth:
    """The caller of the current request as hooks see it, or a 401 / 503."""
    return (await identity(auth)).user_api_key_auth()


async def admin(auth: Authenticator, what: str) -> Identity:
    """The caller, who must be a proxy admin: 401 without a valid key, 403 ``admin_only`` otherwise."""
    who = await identity(auth)
    auth.require_admin(who, what)
    return who
