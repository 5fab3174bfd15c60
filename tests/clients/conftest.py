"""One real ``trioproxy run`` for every client test, with the models the clients ask for.

The clients are the real ones (OpenAI's Python and Node SDKs, LangChain, LlamaIndex, LiteLLM's SDK,
the Vercel AI SDK, instructor, curl), talking HTTP to a real proxy process. The proxy serves the
built-in ``fake`` provider (no network) and relays two models to the fake OpenAI upstream of
``tests/support/fake_upstream.py`` (the ``openai/…`` path). One process for the session: the
clients only read from it, and starting one per test would multiply the suite's time.

Offline: tiktoken (LangChain's embeddings tokenize their input; LlamaIndex counts tokens) would
download its BPE files; LiteLLM ships cl100k_base and o200k_base, so ``TIKTOKEN_CACHE_DIR`` points
there. ``LITELLM_LOCAL_MODEL_COST_MAP`` keeps LiteLLM from fetching its price table at import.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import MASTER_KEY, UPSTREAM_KEY
from support.fake_upstream import Behavior, FakeUpstream
from support.proxy_process import ProxyProcess, write_config

NODE_DIR = Path(__file__).parent / "node"

#: the proxy's model names, as the clients use them
CHAT = "fake-chat"              # fake/…: echoes the last user message
KNOWN_CHAT = "gpt-4o-mini"      # fake/… under a name LlamaIndex knows (it checks model names)
EMBED = "text-embedding-3-small"  # fake/…
RELAY_CHAT = "relay-chat"       # openai/… → tests/support/fake_upstream.py
RELAY_EMBED = "relay-embed"
OVERLOADED = "fake-overloaded"  # fake/… failing every request with a 429 (the fake's error injection)
BROKEN_STREAM = "relay-broken"  # openai/… whose upstream closes the connection mid-stream
RELAY_NATIVE = "relay-native"   # openai/… at an upstream that serves /v1/responses: forwarded natively
KNOWN_OVERLOADED = "gpt-4-turbo"   # the same two under names LlamaIndex accepts
KNOWN_BROKEN_STREAM = "gpt-4.1"
UPSTREAM_TEXT = "Hello from the fake upstream."


def _offline_environment() -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    spec = importlib.util.find_spec("litellm")
    if spec is not None and spec.submodule_search_locations:
        tokenizers = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"
        os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(tokenizers))


_offline_environment()


@dataclass(frozen=True)
class ClientProxy:
    proxy: ProxyProcess
    upstream: FakeUpstream

    @property
    def url(self) -> str:
        """The OpenAI base URL (``…/v1``)."""
        return self.proxy.url

    @property
    def base_url(self) -> str:
        return self.proxy.base_url

    key = MASTER_KEY


@pytest.fixture(scope="session")
def client_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClientProxy]:
    with FakeUpstream(api_key=UPSTREAM_KEY) as upstream:
        upstream.set_behavior("up-broken", Behavior(content="a long answer cut short by the upstream", chunks=8,
                                                    stream_end="close"))
        relay = {"api_base": upstream.base_url, "api_key": UPSTREAM_KEY}
        config = {
            "model_list": [
                {"model_name": CHAT, "litellm_params": {"model": f"fake/{CHAT}"}},
                {"model_name": KNOWN_CHAT, "litellm_params": {"model": f"fake/{KNOWN_CHAT}"}},
                {"model_name": EMBED, "litellm_params": {"model": f"fake/{EMBED}"}},
                {"model_name": RELAY_CHAT, "litellm_params": {"model": "openai/up-model", **relay}},
                {"model_name": RELAY_EMBED, "litellm_params": {"model": "openai/up-embed", **relay}},
                {"model_name": OVERLOADED, "litellm_params": {"model": f"fake/{OVERLOADED}", "fail_rate": 1.0,
                                                              "fail_status": 429}},
                {"model_name": BROKEN_STREAM, "litellm_params": {"model": "openai/up-broken", **relay}},
                # serves /v1/responses itself: forwarded untranslated (docs/responses_api.md)
                {"model_name": RELAY_NATIVE, "litellm_params": {"model": "openai/up-native", **relay},
                 "model_info": {"supported_endpoints": ["/v1/chat/completions", "/v1/responses"]}},
                {"model_name": KNOWN_OVERLOADED, "litellm_params": {"model": f"fake/{KNOWN_OVERLOADED}",
                                                                    "fail_rate": 1.0, "fail_status": 429}},
                {"model_name": KNOWN_BROKEN_STREAM, "litellm_params": {"model": "openai/up-broken", **relay}},
            ],
            "general_settings": {"master_key": MASTER_KEY},
        }
        path = write_config(tmp_path_factory.mktemp("client-proxy"), config)
        with ProxyProcess(path) as proxy:
            yield ClientProxy(proxy, upstream)
        assert not upstream.errors, upstream.errors


def run_node(script: str, case: str, proxy: ClientProxy, *, key: str | None = None,
             extra: dict[str, str] | None = None) -> Any:
    """Run ``node tests/clients/node/<script> <case>``; it prints one JSON document on stdout."""
    node = shutil.which("node")
    assert node, "node is not on PATH: the Node client tests need Node >= 20"
    assert (NODE_DIR / "node_modules").is_dir(), "tests/clients/node/node_modules is missing: run ./scripts/bootstrap"
    env = {**os.environ, "PROXY_URL": proxy.url, "PROXY_KEY": key or proxy.key, **(extra or {})}
    done = subprocess.run([node, str(NODE_DIR / script), case], cwd=NODE_DIR, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, f"node {script} {case} exited {done.returncode}:\n{done.stderr}\n{done.stdout}"
    lines = done.stdout.strip().splitlines()
    assert lines, f"node {script} {case} printed nothing:\n{done.stderr}"
    return json.loads(lines[-1])
