"""Wiring the logging sink, metrics and the response cache into the app (issue: logging & cost).

:func:`install` is called once per app with its ``ProxyState``: it may append observers
(``state.observers``), services (``state.services``) and set ``state.pipeline.response_cache``.
:func:`register_routes` adds ``/metrics``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["install", "register_routes"]


def install(state: Any) -> None:
    """Attach observers and services to a freshly built ProxyState."""


def register_routes(app: Any, state: Any) -> None:
    """Routes for observability (``/metrics``)."""
