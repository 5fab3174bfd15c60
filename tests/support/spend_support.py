"""Budgets, rate limits and spend end to end: configs, waiting for conditions, a client that disconnects.

The e2e spend tests (``tests/e2e/spend/``) run a real ``trioproxy run`` on a real SQLite file or
PostgreSQL database, against the fake upstream; these are their shared pieces.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import orjson

from support.fake_upstream import FakeUpstream
from support.keys_support import MASTER, UPSTREAM_KEY, Api
from trioproxy.spend.estimate import estimate_prompt_tokens

__all__ = ["INPUT_PRICE", "OUTPUT_PRICE", "MAX_TOKENS", "estimate_usd", "raw_request", "rows_of", "spend_config",
           "wait_for"]

#: the priced model's prices (USD per token): estimates and costs are exact multiples of these
INPUT_PRICE = 1e-6
OUTPUT_PRICE = 1e-5
#: what every budget test asks for (the reservation's output part)
MAX_TOKENS = 100
#: seconds ``gpt-timeout`` (upstream ``up-timeout``) waits for its upstream: the tests hold it longer
TIMEOUT = 1.0


def estimate_usd(content: str, max_tokens: int = MAX_TOKENS) -> float:
    """The reservation of a one-message chat request (docs/spend.md "The estimate")."""
    prompt = estimate_prompt_tokens({"messages": [{"role": "user", "content": content}]})
    return (prompt * INPUT_PRICE + max_tokens * OUTPUT_PRICE)


def spend_config(upstream: FakeUpstream, database_url: str, *, litellm: dict[str, Any] | None = None,
                 files_callbacks: list[str] | None = None, **general: Any) -> dict[str, Any]:
    """A proxy with a database, the priced ``gpt-test`` (upstream ``up-model``), ``gpt-held``
    (upstream ``up-held``), ``gpt-timeout`` (upstream ``up-timeout``, timeout :data:`TIMEOUT`) and
    the master key; no retries (a 500 is one upstream call)."""
    def model(name: str, upstream_name: str, **params: Any) -> dict[str, Any]:
        return {"model_name": name, "litellm_params": {
            "model": f"openai/{upstream_name}", "api_base": upstream.base_url, "api_key": UPSTREAM_KEY,
            "input_cost_per_token": INPUT_PRICE, "output_cost_per_token": OUTPUT_PRICE, **params}}

    return {
        "model_list": [model("gpt-test", "up-model"), model("gpt-held", "up-held"),
                       model("gpt-timeout", "up-timeout", timeout=TIMEOUT)],
        "litellm_settings": {"num_retries": 0, **({"callbacks": files_callbacks} if files_callbacks else {}),
                             **(litellm or {})},
        "general_settings": {"master_key": MASTER, "database_url": database_url, **general},
    }


def wait_for(condition: Callable[[], Any], *, timeout: float = 15.0, what: str = "a condition") -> Any:
    """Poll ``condition`` until it returns something truthy (and return that). A wait for an event
    the proxy reports, never a bet on how long something takes: ``timeout`` only ends a test that
    would otherwise hang."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.02)


def rows_of(api: Api, **query: Any) -> list[dict[str, Any]]:
    """``GET /spend/logs`` with the master key (newest first)."""
    return api.ok(api.get("/spend/logs", {k: v for k, v in query.items() if v is not None}))  # type: ignore[no-any-return]


def raw_request(base_url: str, key: str, body: dict[str, Any]) -> socket.socket:
    """Send a chat request on a plain socket and return it unread: the test closes it to disconnect."""
    parts = urlsplit(base_url)
    sock = socket.create_connection((parts.hostname, parts.port))
    payload = orjson.dumps(body)
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n"
                 + f"Authorization: Bearer {key}\r\nContent-Length: {len(payload)}\r\n\r\n".encode() + payload)
    return sock


def master_headers() -> dict[str, str]:
    return {"authorization": f"Bearer {MASTER}"}
