"""A secret rotated in the manager reaches a running proxy (issue #17): a real ``trioproxy run`` whose
provider keys live only in a (fake) HashiCorp Vault, with a short ``refresh_interval``.

After the rotation, the next request that starts once the refresh service has read the new value
uses the new key — for an OpenAI-compatible deployment and for a native provider alike — and the
old value is still masked wherever it shows up. When that happened is told by the Vault fake, not by
a clock: reads are made round after round, and a read recorded in a later round than the first one
that saw the new value means that round (and its change callback) is over.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

import openai

from conftest import MASTER_KEY
from support.fake_services import Seen
from support.fake_upstream import Behavior, FakeUpstream
from support.fake_vault import FakeVault
from support.native_fakes.anthropic_fake import AnthropicFake
from support.proxy_process import ProxyProcess

OPENAI_NAME = "TRIOPROXY_ROTATED_OPENAI_KEY"
ANTHROPIC_NAME = "TRIOPROXY_ROTATED_ANTHROPIC_KEY"
OLD_OPENAI = "sk-old-SECRET-openai-0123456789abcdef"
NEW_OPENAI = "sk-new-SECRET-openai-fedcba9876543210"
OLD_ANTHROPIC = "sk-ant-old-SECRET-0123456789abcdefgh"
NEW_ANTHROPIC = "sk-ant-new-SECRET-hgfedcba9876543210"
USER = [{"role": "user", "content": "hi"}]


def reads_of(name: str) -> Callable[[Seen], bool]:
    return lambda seen: seen.method == "GET" and seen.path.endswith(f"/{name}")


def test_a_rotated_secret_is_used_by_the_next_request_and_the_old_one_stays_masked(
        fake_upstream: FakeUpstream, start_proxy: Callable[..., ProxyProcess]) -> None:
    fake_upstream.api_key = OLD_OPENAI
    with FakeVault(token="hvs.proxy") as vault, AnthropicFake(OLD_ANTHROPIC) as anthropic:
        vault.put(OPENAI_NAME, key=OLD_OPENAI)
        vault.put(ANTHROPIC_NAME, key=OLD_ANTHROPIC)
        config = {
            "model_list": [
                {"model_name": "gpt", "litellm_params": {"model": "openai/up-model", "api_base": fake_upstream.base_url,
                                                         "api_key": f"os.environ/{OPENAI_NAME}"}},
                {"model_name": "claude", "litellm_params": {"model": "anthropic/claude-haiku-4-5",
                                                            "api_base": anthropic.base_url,
                                                            "api_key": f"os.environ/{ANTHROPIC_NAME}"}}],
            "litellm_settings": {"num_retries": 0},
            "general_settings": {"master_key": MASTER_KEY, "key_management_system": "hashicorp_vault",
                                 "key_management_settings": {"hosted_keys": [OPENAI_NAME, ANTHROPIC_NAME],
                                                             "refresh_interval": 0.2}}}
        proxy = start_proxy(config, env={"HCP_VAULT_ADDR": vault.url, "HCP_VAULT_TOKEN": "hvs.proxy"})
        client = openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0, timeout=30)
        assert client.chat.completions.create(model="gpt", messages=USER).choices[0].message.content
        assert client.chat.completions.create(model="claude", messages=USER).choices[0].message.content

        # rotate both in the manager (and at the upstreams, which now refuse the old keys)
        vault.put(OPENAI_NAME, key=NEW_OPENAI)
        vault.put(ANTHROPIC_NAME, key=NEW_ANTHROPIC)
        fake_upstream.api_key = NEW_OPENAI
        anthropic.api_key = NEW_ANTHROPIC
        rotated_at = len(vault.seen())
        # a read recorded after the rotation is answered with the new value; the next read of the same
        # name belongs to the next round, which starts only after the previous round told the proxy
        for name in (OPENAI_NAME, ANTHROPIC_NAME):
            vault.wait_for(lambda requests, name=name: sum(map(reads_of(name), requests[rotated_at:])) >= 2)

        assert client.chat.completions.create(model="gpt", messages=USER).choices[0].message.content
        assert fake_upstream.requests[-1].headers["authorization"] == f"Bearer {NEW_OPENAI}"
        assert client.chat.completions.create(model="claude", messages=USER).choices[0].message.content
        assert anthropic.last.headers["x-api-key"] == NEW_ANTHROPIC

        # an upstream that echoes the old key and the current one: both masked in the answer
        fake_upstream.set_behavior("up-model", Behavior(status=400, echo=True,
                                                        error_message=f"old {OLD_OPENAI} new {{key}}"))
        try:
            client.chat.completions.create(model="gpt", messages=USER)
        except openai.BadRequestError as exc:
            answer = exc.response.text
        else:
            raise AssertionError("the upstream's 400 was not relayed")
        assert OLD_OPENAI not in answer and NEW_OPENAI not in answer and "old sk-" in answer

        assert proxy.terminate(signal.SIGTERM) == 0
        logs = proxy.logs()
        assert f"secret refresh: os.environ/{OPENAI_NAME} changed in hashicorp_vault" in logs
        for secret in (OLD_OPENAI, NEW_OPENAI, OLD_ANTHROPIC, NEW_ANTHROPIC):
            assert secret not in logs
