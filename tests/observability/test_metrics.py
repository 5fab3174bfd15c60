"""``GET /metrics``: Prometheus text that parses, moves as requests are made, and leaks nothing."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from support.app_harness import AUTH, MASTER, UPSTREAM_SECRET, build_app, collect, request, running

GUARD = '''
from trioproxy import CustomGuardrail


class Blocker(CustomGuardrail):
    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        if "forbidden" in data["messages"][0]["content"]:
            raise ValueError("forbidden topic")
'''
GUARDRAILS = [{"guardrail_name": "blocker",
               "litellm_params": {"guardrail": "guard.Blocker", "mode": "pre_call", "default_on": True}}]


def chat(content: str = "hello", model: str = "gpt-4o", **extra):
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


async def scrape(app, headers=AUTH) -> tuple[int, dict[tuple[str, tuple], float], str]:
    """Status, {(sample name, sorted labels): value}, and the raw text."""
    response = await app.test_client().get("/metrics", headers=headers)
    text = (await response.get_data()).decode()
    if response.status_code != 200:
        return response.status_code, {}, text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return 200, samples, text


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_parse_and_move_with_requests(tmp_path):
    # real time: scraping renders in a worker thread (autojump would see an idle loop)
    app = build_app(tmp_path, files={"guard.py": GUARD}, guardrails=GUARDRAILS, latency=0)
    async with running(app) as state:
        status, before, _ = await scrape(app)
        assert status == 200
        assert value(before, "trioproxy_requests_in_flight") == 0
        assert value(before, "trioproxy_logging_queue_depth") == 0
        assert value(before, "trioproxy_logging_events_dropped_total") == 0

        await request(state, chat())
        await request(state, chat("forbidden words"))
        await request(state, chat(model="someone-elses-model"))
        stream = await request(state, chat("stream", stream=True))
        _, during, _ = await scrape(app)
        assert value(during, "trioproxy_requests_in_flight") == 1     # the open stream
        await collect(stream)
        status, after, text = await scrape(app)

    chat_route = {"route": "chat/completions"}
    assert value(after, "trioproxy_requests_total", model="gpt-4o", status="200", **chat_route) == 2
    assert value(after, "trioproxy_requests_total", model="gpt-4o", status="400", **chat_route) == 1
    assert value(after, "trioproxy_requests_total", model="other", status="404", **chat_route) == 1
    assert value(after, "trioproxy_requests_in_flight") == 0
    assert value(after, "trioproxy_request_duration_seconds_count", model="gpt-4o", **chat_route) == 3
    assert value(after, "trioproxy_upstream_duration_seconds_count", model="gpt-4o", **chat_route) == 2
    assert value(after, "trioproxy_time_to_first_token_seconds_count", model="gpt-4o", **chat_route) == 1
    assert value(after, "trioproxy_hook_duration_seconds_count", handler="blocker", phase="pre_call") == 4
    assert value(after, "trioproxy_phase_duration_seconds_count", phase="pre_call") == 4
    assert value(after, "trioproxy_guardrail_rejections_total", guardrail="blocker") == 1
    assert value(after, "trioproxy_tokens_total", model="gpt-4o", type="prompt") > 0
    assert value(after, "trioproxy_tokens_total", model="gpt-4o", type="completion") > 0
    assert value(after, "trioproxy_spend_usd_total", model="gpt-4o") == pytest.approx(
        2.5e-6 * value(after, "trioproxy_tokens_total", model="gpt-4o", type="prompt")
        + 1e-5 * value(after, "trioproxy_tokens_total", model="gpt-4o", type="completion"))
    assert MASTER not in text and UPSTREAM_SECRET not in text


async def test_metrics_need_the_master_key_unless_public(tmp_path):
    private = build_app(tmp_path / "private")
    status, _, body = await scrape(private, headers={})
    assert status == 401 and MASTER not in body
    assert (await scrape(private, headers={"authorization": "Bearer wrong-key-000000"}))[0] == 401
    public = build_app(tmp_path / "public", general={"metrics_public": True})
    assert (await scrape(public, headers={}))[0] == 200
