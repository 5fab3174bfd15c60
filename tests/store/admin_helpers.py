"""Callers and helpers for the admin-operation tests."""

from __future__ import annotations

from typing import Any

import pytest

from trioproxy.admin import Caller
from trioproxy.errors import ProxyError, to_envelope

#: the master key as the HTTP layer builds it (``Caller.for_identity``): no hash of the master key
MASTER = Caller.master()
VIEWER = Caller(role="proxy_admin_viewer", token="v" * 64, user_id="viewer")
PLAIN = Caller(role="internal_user", token="p" * 64, user_id="plain")


async def error_of(coro: Any) -> tuple[int, dict[str, Any]]:
    """The (status, envelope) an operation fails with."""
    with pytest.raises(ProxyError) as info:
        await coro
    status, body = to_envelope(info.value)
    return status, body["error"]
