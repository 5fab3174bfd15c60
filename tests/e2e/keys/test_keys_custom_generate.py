"""``general_settings.custom_key_generate`` / ``custom_key_update`` (LiteLLM's custom decision before
``/key/generate`` and ``/key/update``) through a real ``trioproxy run`` on SQLite, with the function
of LiteLLM's docs (``docs/proxy/virtual_keys.md``, imports rewritten). The hook has no database logic
of its own, so one backend is enough here; the store paths it guards are tested on both elsewhere."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.fake_upstream import FakeUpstream
from support.keys_support import UPSTREAM_KEY, Api, error, keys_config, make_database
from support.proxy_process import ProxyProcess, write_config
from trioproxy.config import ConfigError, load_config
from trioproxy.proxy import load_custom_key_hooks

#: LiteLLM's documented function, as published but for the import, plus two failure cases
CUSTOM_AUTH = '''
import trio
from trioproxy import GenerateKeyRequest, UpdateKeyRequest


async def custom_generate_key_fn(data: GenerateKeyRequest) -> dict:
    # decide if a key should be generated or not
    print("using custom auth function!")
    data_json = data.json()  # type: ignore

    # Unpacking variables
    team_id = data_json.get("team_id")
    duration = data_json.get("duration")
    models = data_json.get("models")
    aliases = data_json.get("aliases")
    config = data_json.get("config")
    spend = data_json.get("spend")
    user_id = data_json.get("user_id")
    max_parallel_requests = data_json.get("max_parallel_requests")
    metadata = data_json.get("metadata")
    tpm_limit = data_json.get("tpm_limit")
    rpm_limit = data_json.get("rpm_limit")

    if team_id == "HANG":
        await trio.sleep_forever()
    if team_id == "BOOM":
        raise RuntimeError("policy service down; key=" + str(data.key))
    if team_id is not None and team_id == "litellm-core-infra@gmail.com":
        # only team_id="litellm-core-infra@gmail.com" can make keys
        return {
            "decision": True,
        }
    else:
        print("Failed custom auth")
        return {
            "decision": False,
            "message": "This violates LiteLLM Proxy Rules. No team id provided.",
        }


async def custom_update_key_fn(data: UpdateKeyRequest) -> dict:
    if "duration" in data.model_fields_set and data.duration is None:
        return {"decision": False, "message": "This violates LiteLLM Proxy Rules. Keys must keep an expiration date."}
    return {"decision": True}


def not_async(data):
    return {"decision": True}
'''


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    directory = tmp_path_factory.mktemp("custom_generate")
    database = make_database("sqlite", directory, None)
    with FakeUpstream(api_key=UPSTREAM_KEY) as upstream:
        config = keys_config(upstream, database.url, custom_key_generate="custom_auth.custom_generate_key_fn",
                             custom_key_update="custom_auth.custom_update_key_fn", custom_key_generate_timeout=0.5)
        config["litellm_settings"]["callbacks"] = []
        config["guardrails"] = []
        path = write_config(directory, config, files={"custom_auth.py": CUSTOM_AUTH})
        with ProxyProcess(path) as proxy:
            client = Api(proxy)
            client.ok(client.post("/team/new", {"team_id": "litellm-core-infra@gmail.com"}))
            yield client
            client.close()
            assert "custom-SECRET-key-1234" not in proxy.logs()


def test_the_function_decides_key_generation(api: Api) -> None:
    made = api.ok(api.post("/key/generate", {"team_id": "litellm-core-infra@gmail.com", "models": ["gpt-test"]}))
    assert made["key"].startswith("sk-")
    assert api.chat(made["key"]).status_code == 200
    denied = api.post("/key/generate", {"models": ["gpt-test"]})
    assert denied.status_code == 403
    assert error(denied)["message"] == "This violates LiteLLM Proxy Rules. No team id provided."
    assert api.post("/key/generate", {"team_id": "other"}).status_code == 403


def test_a_failing_function_fails_closed(api: Api) -> None:
    for team in ("BOOM", "HANG"):
        refused = api.post("/key/generate", {"team_id": team, "key": "sk-custom-SECRET-key-1234"})
        assert refused.status_code == 503
        assert error(refused)["code"] == "custom_key_generate_unavailable"
    listed = api.ok(api.get("/key/list", {"return_full_object": "true"}))
    assert all(k.get("team_id") not in ("BOOM", "HANG") for k in listed["keys"] if isinstance(k, dict))


def test_custom_key_update_sees_what_the_update_sets(api: Api) -> None:
    key = api.ok(api.post("/key/generate", {"team_id": "litellm-core-infra@gmail.com", "duration": "30d"}))["key"]
    refused = api.post("/key/update", {"key": key, "duration": None})
    assert refused.status_code == 403
    assert error(refused)["message"] == "This violates LiteLLM Proxy Rules. Keys must keep an expiration date."
    assert api.ok(api.post("/key/update", {"key": key, "max_budget": 5}))["max_budget"] == 5


def test_a_missing_or_sync_function_stops_startup(tmp_path: Path) -> None:
    (tmp_path / "custom_auth.py").write_text(CUSTOM_AUTH)
    for dotted, problem in (("custom_auth.not_async", "must be an async function"),
                            ("custom_auth.nowhere", "nowhere")):
        path = write_config(tmp_path, {"model_list": [], "general_settings": {"custom_key_generate": dotted}})
        with pytest.raises(ConfigError) as caught:
            load_custom_key_hooks(load_config(path))
        assert "general_settings.custom_key_generate" in str(caught.value) and problem in str(caught.value)
