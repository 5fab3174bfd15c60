"""Management operations (LiteLLM's ``/key``, ``/team``, ``/user``, ``/customer``, ``/budget``,
``/audit`` endpoints), independent of any web framework.

Each operation is ``async def op(ctx: AdminContext, caller: Caller, data) -> answer`` and raises a
``trioproxy.errors`` error with LiteLLM's status and message; :data:`ROUTES` lists them with their
method, path and who may call them. Not wired into the HTTP app yet (see docs/keys.md).
"""

from .access import Access, Caller, require
from .common import AdminContext, new_clear_key
from .routes import ROUTES, Route, find_route

__all__ = ["ROUTES", "Access", "AdminContext", "Caller", "Route", "find_route", "new_clear_key", "require"]
