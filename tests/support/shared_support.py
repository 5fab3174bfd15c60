"""Several real ``trioproxy run`` processes on one PostgreSQL and one Redis (issue #13's tests).

``Cluster`` starts N instances from one config (as an operator runs N machines: the same file,
the same database, the same Redis) and gives each an HTTP client. ``until`` polls a condition with
a hang guard only (never a speed assertion) and returns how long it took: the propagation time the
tests report.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx

from support.fake_upstream import Behavior, FakeUpstream
from support.proxy_process import ProxyProcess, write_config
from support.spend_support import INPUT_PRICE, MAX_TOKENS, OUTPUT_PRICE

__all__ = ["MASTER", "UPSTREAM_KEY", "Cluster", "Instance", "concurrent_chats", "shared_config", "until"]

MASTER = "sk-master-SHARED-e2e-0123456789abcdef"
UPSTREAM_KEY = "sk-upstream-SHARED-e2e-0123456789ab"

#: a guard against hanging, never an assertion about speed
HANG = 15.0

T = TypeVar("T")


def shared_config(upstream: FakeUpstream, database_url: str, redis_url: str | None, **general: Any) -> dict[str, Any]:
    """Two priced models on the fake upstream (``spend_support``'s prices); the store on ``database_url``; shared state on ``redis_url``.
    ``user_api_key_cache_ttl`` is long, so only an invalidation can explain a change seen in time."""
    litellm = general.pop("litellm_settings", {})

    def model(name: str, upstream_name: str) -> dict[str, Any]:
        return {"model_name": name, "litellm_params": {
            "model": f"openai/{upstream_name}", "api_base": upstream.base_url, "api_key": UPSTREAM_KEY,
            "input_cost_per_token": INPUT_PRICE, "output_cost_per_token": OUTPUT_PRICE}}

    return {
        "model_list": [model("gpt-test", "up-model"), model("gpt-other", "up-other")],
        "litellm_settings": {"num_retries": 0, **litellm},
        "general_settings": {"master_key": MASTER, "database_url": database_url,
                             "user_api_key_cache_ttl": 600,
                             **({"coordination_redis": redis_url} if redis_url else {}), **general},
    }


class Instance:
    """One proxy process and a client for it (master key unless another is given)."""

    def __init__(self, process: ProxyProcess) -> None:
        self.process = process
        self.client = httpx.Client(base_url=process.base_url, timeout=30)

    def post(self, path: str, body: Any = None, *, key: str | None = None) -> httpx.Response:
        return self.client.post(path, json=body if body is not None else {},
                                headers={"authorization": f"Bearer {key or MASTER}"})

    def get(self, path: str, *, key: str | None = None, params: dict[str, Any] | None = None) -> httpx.Response:
        return self.client.get(path, params=params, headers={"authorization": f"Bearer {key or MASTER}"})

    def ok(self, response: httpx.Response) -> Any:
        assert response.status_code == 200, (response.status_code, response.text)
        return response.json()

    def chat(self, key: str, model: str = "gpt-test", **body: Any) -> httpx.Response:
        return self.client.post("/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                                json={"model": model, "messages": [{"role": "user", "content": "hi"}], **body})

    def models(self, key: str) -> httpx.Response:
        return self.get("/v1/models", key=key)

    def close(self) -> None:
        self.client.close()
        self.process.kill()


class Cluster:
    """N instances of one config."""

    def __init__(self, directory: Path, config: dict[str, Any], n: int = 2, *,
                 env: dict[str, str] | None = None) -> None:
        self.path = write_config(directory, config)
        self.env = env
        self.instances: list[Instance] = []
        for _ in range(n):
            self.start()

    def start(self) -> Instance:
        instance = Instance(ProxyProcess(self.path, env=self.env))
        self.instances.append(instance)
        return instance

    def __getitem__(self, index: int) -> Instance:
        return self.instances[index]

    def close(self) -> None:
        for instance in self.instances:
            instance.close()

    @contextmanager
    def running(self) -> Iterator[Cluster]:
        try:
            yield self
        finally:
            self.close()


def until(condition: Callable[[], T], what: str, *, hang: float = HANG) -> tuple[T, float]:
    """Call ``condition`` until it returns something truthy; that value and the seconds it took.
    Fails after ``hang`` seconds (a hang guard: the tests assert mechanisms, not speed)."""
    started = time.monotonic()
    while True:
        value = condition()
        elapsed = time.monotonic() - started
        if value:
            return value, elapsed
        if elapsed > hang:
            raise AssertionError(f"{what}: not seen within {hang:g} s")
        time.sleep(0.002)


def concurrent_chats(cluster: Cluster, upstream: FakeUpstream, key: str, n: int, content: str,
                     **body: Any) -> tuple[list[httpx.Response], int]:
    """``n`` concurrent chat requests for ``gpt-test``, alternating between the instances; the
    answers, and how many reached the upstream while all ``n`` were in flight.

    The barrier is the fake upstream: every admitted request is held there until each request has
    either been answered by its instance (refused) or reached the upstream (admitted), so all of
    them are decided while every admitted one is still in flight."""
    upstream.reset()                    # count only these requests
    hold = threading.Event()
    upstream.set_behavior("up-model", Behavior(hold=hold))
    clients = [httpx.Client(base_url=i.process.base_url, timeout=60,
                            limits=httpx.Limits(max_connections=n, max_keepalive_connections=n))
               for i in cluster.instances]
    payload = {"model": "gpt-test", "messages": [{"role": "user", "content": content}], "max_tokens": MAX_TOKENS,
               **body}
    try:
        with ThreadPoolExecutor(n) as pool:
            futures = [pool.submit(clients[i % len(clients)].post, "/v1/chat/completions", json=payload,
                                   headers={"authorization": f"Bearer {key}"}) for i in range(n)]
            until(lambda: sum(f.done() for f in futures) + len(upstream.requests) == n, f"all {n} requests decided")
            admitted = len(upstream.requests)
            hold.set()
            answers = [f.result() for f in futures]
    finally:
        hold.set()
        for client in clients:
            client.close()
    return answers, admitted
