"""``GET /health``: call every deployment once, and say which answered (LiteLLM's health check).

LiteLLM's ``/health`` sends each deployment a tiny real request and lists the deployments in
``healthy_endpoints`` / ``unhealthy_endpoints`` (the unhealthy ones with the error). It is not a
liveness probe (``/health/liveliness`` is): it costs a request per deployment, so the route is for
the proxy admin only (``http/routes/health.py``).

What each deployment gets, chosen by ``model_info.mode`` as in LiteLLM: ``embedding`` → an
embeddings request of ``"test from trioproxy"``; ``completion`` → a text completion; anything else
(``chat``, the default) → a chat completion of one user message with ``max_tokens: 1``. The call
goes straight to the deployment's provider — no hooks, no retries, no other deployment, not
logged as a request — within the deployment's ``timeout`` capped at :data:`MAX_SECONDS`. All run
at once. A ``mock_response`` deployment answers locally, as it does for requests.

What is shown: the public model name, ``provider/model`` and the ``api_base`` masked as operators
see it (``Deployment.safe_api_base``); an error is its scrubbed message. Never a key.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import trio

from ..errors import ProxyError, to_proxy_error
from ..masking import SecretScrubber
from ..upstream.base import Provider

if TYPE_CHECKING:
    from ..config import Deployment

__all__ = ["MAX_SECONDS", "check_health"]

#: the longest one deployment's check may take (its own timeout if shorter)
MAX_SECONDS = 60.0
PROMPT = "test from trioproxy"


def _request(deployment: Deployment) -> tuple[str, dict[str, Any]]:
    mode = deployment.model_info.get("mode") if isinstance(deployment.model_info, dict) else None
    if mode == "embedding":
        return "embeddings", {"input": [PROMPT]}
    if mode == "completion":
        return "completions", {"prompt": PROMPT, "max_tokens": 1}
    return "chat/completions", {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": 1}


def _describe(deployment: Deployment) -> dict[str, Any]:
    entry: dict[str, Any] = {"model_name": deployment.model_name,
                             "model": f"{deployment.provider}/{deployment.upstream_model}"}
    if deployment.api_base:
        entry["api_base"] = deployment.safe_api_base
    return entry


async def _check_one(deployment: Deployment, provider: Provider, scrubber: SecretScrubber,
                     out: list[tuple[int, bool, dict[str, Any]]]) -> None:
    endpoint, body = _request(deployment)
    outgoing = {**deployment.extra_params, **body, "model": deployment.upstream_model}
    entry = _describe(deployment)
    started = time.perf_counter()
    try:
        with trio.fail_after(min(deployment.timeout, MAX_SECONDS)):
            await provider.send(deployment, endpoint, outgoing)
        healthy = True
    except trio.TooSlowError:
        healthy = False
        entry["error"] = f"no answer within {min(deployment.timeout, MAX_SECONDS):g} s"
    except Exception as exc:   # every failure is the finding, never the route's crash
        healthy = False
        error: ProxyError = to_proxy_error(exc)
        scrubber.scrub_error(error)
        entry["error"] = error.message
        entry["status_code"] = error.status_code
    entry["response_time_ms"] = round((time.perf_counter() - started) * 1000, 1)
    out.append((deployment.index, healthy, entry))


async def check_health(deployments: Sequence[Deployment], providers: Mapping[str, Provider],
                       scrubber: SecretScrubber) -> dict[str, Any]:
    """LiteLLM's answer: ``healthy_endpoints``, ``unhealthy_endpoints`` and their counts, in config order."""
    results: list[tuple[int, bool, dict[str, Any]]] = []
    async with trio.open_nursery() as nursery:
        for deployment in deployments:
            nursery.start_soon(_check_one, deployment, providers[deployment.provider], scrubber, results)
    results.sort(key=lambda item: item[0])
    healthy = [entry for _, ok, entry in results if ok]
    unhealthy = [entry for _, ok, entry in results if not ok]
    return {"healthy_endpoints": healthy, "unhealthy_endpoints": unhealthy,
            "healthy_count": len(healthy), "unhealthy_count": len(unhealthy)}
