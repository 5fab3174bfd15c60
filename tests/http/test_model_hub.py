"""The public model hub: ``GET /public/model_hub`` (LiteLLM's ModelGroupInfo list) and ``GET /model_hub``."""

from __future__ import annotations

from pathlib import Path

import httpx

from conftest import MASTER_KEY
from trioproxy.config import parse_config
from trioproxy.observability.cost import CostCalculator
from trioproxy.observability.model_info import model_group_info

#: the fields of LiteLLM's ModelGroupInfo that the hub fills (litellm/types/router.py)
FIELDS = {"model_group", "providers", "max_input_tokens", "max_output_tokens", "input_cost_per_token",
          "output_cost_per_token", "input_cost_per_pixel", "mode", "tpm", "rpm", "description",
          "supports_parallel_function_calling", "supports_vision", "supports_web_search", "supports_reasoning",
          "supports_function_calling", "supported_openai_params"}

CONFIG = {
    "model_list": [
        {"model_name": "gpt-4o", "litellm_params": {"model": "fake/gpt-4o"}},
        {"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o-2024-08-06", "api_base": "http://127.0.0.1:9/v1",
                                                    "api_key": "sk-upstream-hub-SECRET-123", "input_cost_per_token": 9e-6}},
        {"model_name": "embed", "litellm_params": {"model": "fake/text-embedding-3-small"}},
        {"model_name": "private", "litellm_params": {"model": "fake/gpt-4o-mini"}},
        {"model_name": "house <model>", "litellm_params": {"model": "fake/house-model"},
         "model_info": {"max_input_tokens": 8192, "supports_vision": True, "description": "ours"}},
    ],
    "litellm_settings": {"public_model_groups": ["house <model>", "gpt-4o", "embed"]},
    "general_settings": {"master_key": MASTER_KEY},
}


def test_group_info_from_the_price_table_and_the_config(tmp_path: Path):
    config = parse_config(CONFIG, "c.yaml", tmp_path)
    cost = CostCalculator()
    gpt = model_group_info("gpt-4o", config.model_groups["gpt-4o"], cost)
    assert set(gpt) == FIELDS
    assert gpt["providers"] == ["fake", "openai"]
    assert (gpt["mode"], gpt["max_input_tokens"], gpt["max_output_tokens"]) == ("chat", 128000, 16384)
    assert gpt["input_cost_per_token"] == 9e-6           # the highest of the group: the override
    assert gpt["output_cost_per_token"] == 1e-5          # the table's gpt-4o price
    embed = model_group_info("embed", config.model_groups["embed"], cost)
    assert embed["mode"] == "embedding" and embed["output_cost_per_token"] == 0.0
    house = model_group_info("house <model>", config.model_groups["house <model>"], cost)
    assert (house["max_input_tokens"], house["supports_vision"], house["description"]) == (8192, True, "ours")
    assert house["input_cost_per_token"] is None and house["mode"] == "chat"   # unpriced: unknown, not 0


def test_the_hub_lists_only_public_groups_without_a_key(start_proxy):
    proxy = start_proxy(CONFIG)
    answer = httpx.get(f"{proxy.base_url}/public/model_hub")
    assert answer.status_code == 200
    groups = answer.json()
    assert [g["model_group"] for g in groups] == ["house <model>", "gpt-4o", "embed"]   # config order
    assert all(set(g) == FIELDS for g in groups)
    assert "sk-upstream-hub-SECRET-123" not in answer.text and "127.0.0.1:9" not in answer.text
    # a bad key on a public route is ignored, as in LiteLLM
    assert httpx.get(f"{proxy.base_url}/public/model_hub", headers={"Authorization": "Bearer nope"}).status_code == 200

    page = httpx.get(f"{proxy.base_url}/model_hub")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<code>house &lt;model&gt;</code>" in page.text and "private" not in page.text
    assert "<script" not in page.text and "http" not in page.text.replace("/public/model_hub", "")
    assert "<td class=n>128,000</td><td class=n>9</td><td class=n>10</td>" in page.text   # context, $/1M in, out


def test_an_empty_hub(start_proxy):
    proxy = start_proxy({"model_list": CONFIG["model_list"][:1], "general_settings": {"master_key": MASTER_KEY}})
    assert httpx.get(f"{proxy.base_url}/public/model_hub").json() == []
    assert "No public models" in httpx.get(f"{proxy.base_url}/model_hub").text
