"""LiteLLM's information routes (issue #15 item 8) through a real ``trioproxy run``: ``GET /health``
(every deployment called once, admin only), ``/model/info``, ``GET /v1/models/{model}``, ``/routes``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from conftest import MASTER_KEY, UPSTREAM_KEY, upstream_model
from support.fake_upstream import Behavior, FakeUpstream
from support.proxy_process import ProxyProcess, write_config

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}
SECRET_HEADER = "hdr-secret-value-123456"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        config = {
            "model_list": [
                {"model_name": "fake-chat", "litellm_params": {"model": "fake/demo"},
                 "model_info": {"description": "the demo"}},
                {"model_name": "fake-embed", "litellm_params": {"model": "fake/embed"},
                 "model_info": {"mode": "embedding"}},
                upstream_model(fake, "relay", "gpt-4o", temperature=0.2,
                               extra_headers={"x-api-key": SECRET_HEADER}),
                upstream_model(fake, "broken", "up-broken"),
                {"model_name": "org/model", "litellm_params": {"model": "fake/slashed"}},
            ],
            "general_settings": {"master_key": MASTER_KEY},
        }
        path = write_config(tmp_path_factory.mktemp("info_routes"), config)
        with ProxyProcess(path) as proxy:
            yield {"proxy": proxy, "fake": fake}


def get(env: dict[str, Any], path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.get(env["proxy"].base_url + path, headers=ADMIN if headers is None else headers, timeout=60)


def test_health_calls_every_deployment(env: dict[str, Any]) -> None:
    env["fake"].reset()
    env["fake"].set_behavior("up-broken", Behavior(status=500, error_message="the upstream is down"))
    body = get(env, "/health").json()
    assert body["healthy_count"] == 4 and body["unhealthy_count"] == 1
    assert [e["model_name"] for e in body["healthy_endpoints"]] == ["fake-chat", "fake-embed", "relay", "org/model"]
    (broken,) = body["unhealthy_endpoints"]
    assert broken["model_name"] == "broken" and broken["model"] == "openai/up-broken"
    assert "the upstream is down" in broken["error"] and broken["status_code"] == 500
    # one real, tiny request per deployment: a chat completion with max_tokens 1
    sent = {r.json["model"]: r.json for r in env["fake"].requests}
    assert sent["gpt-4o"]["max_tokens"] == 1 and sent["gpt-4o"]["messages"][0]["role"] == "user"
    assert sent["gpt-4o"]["temperature"] == 0.2      # the deployment's own defaults go along
    assert UPSTREAM_KEY not in str(body) and SECRET_HEADER not in str(body)


def test_health_of_one_model(env: dict[str, Any]) -> None:
    body = get(env, "/v1/health?model=relay").json()
    assert [e["model_name"] for e in body["healthy_endpoints"]] == ["relay"] and body["unhealthy_endpoints"] == []
    assert get(env, "/health?model=nope").status_code == 404


def test_health_is_for_the_admin_only(env: dict[str, Any]) -> None:
    assert get(env, "/health", headers={}).status_code == 401
    assert get(env, "/health", headers={"authorization": "Bearer wrong-key-12345"}).status_code == 401
    # the probes stay open
    assert get(env, "/health/liveliness", headers={}).status_code == 200
    assert get(env, "/health/readiness", headers={}).status_code == 200


def test_model_info_describes_each_deployment_without_secrets(env: dict[str, Any]) -> None:
    for path in ("/model/info", "/v1/model/info"):
        response = get(env, path)
        assert response.status_code == 200
        data = response.json()["data"]
        assert [d["model_name"] for d in data] == ["fake-chat", "fake-embed", "relay", "broken", "org/model"]
        relay = data[2]
        assert relay["litellm_params"]["model"] == "openai/gpt-4o"
        assert relay["litellm_params"]["temperature"] == 0.2
        assert relay["model_info"]["input_cost_per_token"] > 0 and relay["model_info"]["mode"] == "chat"
        assert data[0]["model_info"]["description"] == "the demo"
        assert data[1]["model_info"]["mode"] == "embedding"
        assert UPSTREAM_KEY not in response.text and SECRET_HEADER not in response.text
    one = get(env, f"/model/info?litellm_model_id={data[2]['model_info']['id']}").json()["data"]
    assert [d["model_name"] for d in one] == ["relay"]
    assert get(env, "/model/info", headers={}).status_code == 401


def test_models_retrieve_with_the_openai_sdk(env: dict[str, Any]) -> None:
    client = openai.OpenAI(base_url=env["proxy"].url, api_key=MASTER_KEY, max_retries=0)
    assert client.models.retrieve("relay").id == "relay"
    assert client.models.retrieve("org/model").id == "org/model"
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("no-such-model")
    assert info.value.body["code"] == "model_not_found"


def test_routes_lists_every_route(env: dict[str, Any]) -> None:
    routes = {r["path"]: r["methods"] for r in get(env, "/routes").json()["routes"]}
    assert routes["/v1/chat/completions"] == ["POST"] and routes["/v1/embeddings"] == ["POST"]
    assert routes["/v1/models"] == ["GET"] and routes["/health"] == ["GET"] and routes["/routes"] == ["GET"]
    assert "/model/info" in routes and "/health/liveliness" in routes
    assert get(env, "/routes", headers={}).status_code == 401
