"""Custom guardrails end to end: the seed's scenarios through a real ``trioproxy run`` process.

One proxy serves every scenario. Its config registers the seed's ``handlers/custom_guardrail.py``
(copied next to the config, as a user would) under the seed's three names and modes, plus test
guardrails from ``tests/data/guardrails/extra_guardrails.py``. What the upstream received is read
from the fake upstream's records; what the client received is read with the official ``openai``
client or raw ``httpx`` (for status codes and SSE frames).

The during_call race is made deterministic with a gate: ``gated-during-guard`` asks a tiny HTTP
server in this test process, which answers only once the fake upstream has recorded the request.
So the rejection provably arrives while the upstream call is in flight, and the fake upstream's
``client_disconnected_early`` proves the proxy abandoned it. No sleeps, no timing assertions.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from conftest import MASTER_KEY, UPSTREAM_KEY, upstream_model
from support.fake_upstream import Behavior, FakeUpstream, RecordedRequest
from support.proxy_process import ProxyProcess, write_config
from trioproxy.config import parse_config
from trioproxy.errors import BadRequestError
from trioproxy.hooks.base import CustomGuardrail, requested_guardrails
from trioproxy.hooks.loader import inspect_handler
from trioproxy.hooks.scheduler import GUARDRAIL_MODE_PHASES, HookPlan

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parents[1] / "data" / "guardrails"
HEADERS = {"authorization": f"Bearer {MASTER_KEY}"}

COFFEE = "I love coffee in the morning."
GATED_MODEL = "gated-model"
TEA = "Tea is a drink made from leaves."


def guardrail(name: str, path: str, mode: str | list[str], **params: Any) -> dict[str, Any]:
    return {"guardrail_name": name, "litellm_params": {"guardrail": path, "mode": mode, **params}}


def make_config(fake: FakeUpstream) -> dict[str, Any]:
    seed = "custom_guardrail.myCustomGuardrail"
    return {
        "model_list": [
            upstream_model(fake, "gpt-4", "gpt-4o"),
            upstream_model(fake, "coffee", "coffee-model"),
            upstream_model(fake, "tea", "tea-model"),
            upstream_model(fake, "slow", "slow-model"),
            upstream_model(fake, "gated", GATED_MODEL),
        ],
        "general_settings": {"master_key": MASTER_KEY},
        "litellm_settings": {"num_retries": 0, "callbacks": ["extra_guardrails.tag_callback"]},
        "guardrails": [
            # the seed's three
            guardrail("custom-pre-guard", seed, "pre_call"),
            guardrail("custom-during-guard", seed, "during_call"),
            guardrail("custom-post-guard", seed, "post_call"),
            # the same class, more names and modes
            guardrail("custom-post-guard-buffered", seed, "post_call", stream_mode="buffer"),
            guardrail("multi-mode-guard", seed, ["pre_call", "post_call"]),
            guardrail("dynamic-params-guard", "extra_guardrails.DynamicParamsGuard", "pre_call"),
            guardrail("mask-forbidden", "extra_guardrails.MaskWord", "pre_call", default_on=True,
                      word="forbidden-word"),
            guardrail("order-guard-a", "extra_guardrails.TagGuard", "pre_call"),
            guardrail("order-guard-b", "extra_guardrails.TagGuard", "pre_call"),
            guardrail("forbidden-guard", "extra_guardrails.ForbiddenGuard", "pre_call"),
            guardrail("gated-during-guard", "extra_guardrails.GatedDuringGuard", "during_call"),
        ],
    }


def wait_for_model(fake: FakeUpstream, model: str, timeout: float = 10.0) -> RecordedRequest:
    """Block until the fake upstream has recorded a request for ``model`` (only its public API)."""
    deadline = time.monotonic() + timeout
    seen = 0
    while True:
        for record in list(fake.requests):
            if isinstance(record.json, dict) and record.json.get("model") == model:
                return record
        seen = len(fake.requests) + 1
        fake.wait_for_requests(seen, timeout=max(0.0, deadline - time.monotonic()))


class _Gate:
    """``GET /upstream-received`` answers 200 once the fake upstream has a request for ``GATED_MODEL``."""

    def __init__(self, fake: FakeUpstream) -> None:
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                try:
                    wait_for_model(gate.fake, GATED_MODEL)
                    status = 200
                except TimeoutError:
                    status = 504
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.fake = fake
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/upstream-received"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Gate:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    directory = tmp_path_factory.mktemp("guardrails")
    files = {"custom_guardrail.py": (ROOT / "handlers" / "custom_guardrail.py").read_text(),
             "extra_guardrails.py": (DATA / "extra_guardrails.py").read_text()}
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake, _Gate(fake) as gate:
        path = write_config(directory, make_config(fake), files=files)
        with ProxyProcess(path, env={"GATE_URL": gate.url}) as proxy:
            yield {"proxy": proxy, "fake": fake, "config_path": path}
        assert not fake.errors, fake.errors


@pytest.fixture
def ctx(env: dict[str, Any]) -> dict[str, Any]:
    fake: FakeUpstream = env["fake"]
    fake.reset()
    fake.set_behavior("coffee-model", Behavior(content=COFFEE))
    fake.set_behavior("tea-model", Behavior(content=TEA))
    fake.set_behavior("slow-model", Behavior(delay=30))
    fake.set_behavior(GATED_MODEL, Behavior(delay=30))
    return env


def client(ctx: dict[str, Any]) -> openai.OpenAI:
    return openai.OpenAI(base_url=ctx["proxy"].url, api_key=MASTER_KEY, max_retries=0, timeout=30)


def post(ctx: dict[str, Any], content: str, model: str = "gpt-4", **extra: Any) -> httpx.Response:
    return httpx.post(f"{ctx['proxy'].url}/chat/completions", headers=HEADERS, timeout=30,
                      json={"model": model, "messages": [{"role": "user", "content": content}], **extra})


def stream_frames(ctx: dict[str, Any], content: str, model: str, guardrails: list[Any]) -> list[Any]:
    """Every SSE ``data:`` payload the client received, parsed (``"[DONE]"`` kept as a string)."""
    frames: list[Any] = []
    with httpx.stream("POST", f"{ctx['proxy'].url}/chat/completions", headers=HEADERS, timeout=30,
                      json={"model": model, "stream": True, "guardrails": guardrails,
                            "messages": [{"role": "user", "content": content}]}) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                payload = line[len("data: "):]
                frames.append(payload if payload == "[DONE]" else json.loads(payload))
    return frames


def content_of(frames: list[Any]) -> str:
    return "".join((c.get("delta") or {}).get("content") or ""
                   for f in frames if isinstance(f, dict) for c in f.get("choices") or [])


def upstream_prompt(ctx: dict[str, Any]) -> str:
    return ctx["fake"].requests[-1].json["messages"][-1]["content"]


def assert_guardrail_error(response: httpx.Response, name: str, text: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "guardrail_violation"
    assert error["code"] == "guardrail_violation"
    assert repr(name) in error["message"] and text in error["message"]


# -- pre_call ---------------------------------------------------------------------------------------

def test_pre_call_masks_litellm_before_the_upstream_sees_it(ctx: dict[str, Any]) -> None:
    answer = client(ctx).chat.completions.create(
        model="gpt-4", messages=[{"role": "user", "content": "say the word - `litellm`"}],
        extra_body={"guardrails": ["custom-pre-guard"]})
    assert answer.choices[0].message.content == "Hello from the fake upstream."
    assert upstream_prompt(ctx) == "say the word - `********`"
    assert "guardrails" not in ctx["fake"].requests[-1].json   # steering field, not sent upstream


def test_pre_call_leaves_other_prompts_alone(ctx: dict[str, Any]) -> None:
    client(ctx).chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "hi what is the weather"}],
                                        extra_body={"guardrails": ["custom-pre-guard"]})
    assert upstream_prompt(ctx) == "hi what is the weather"


def test_guardrail_not_named_does_not_run(ctx: dict[str, Any]) -> None:
    client(ctx).chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "say litellm"}])
    assert upstream_prompt(ctx) == "say litellm"


def test_guardrails_named_under_metadata(ctx: dict[str, Any]) -> None:
    client(ctx).chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "say litellm"}],
                                        extra_body={"metadata": {"guardrails": ["custom-pre-guard"]}})
    assert upstream_prompt(ctx) == "say ********"


# -- during_call --------------------------------------------------------------------------------------

def test_during_call_rejects_and_the_upstream_call_does_not_complete(ctx: dict[str, Any]) -> None:
    response = post(ctx, "say the word - `litellm`", model="slow", guardrails=["custom-during-guard"])
    assert_guardrail_error(response, "custom-during-guard", "Guardrail failed words - `litellm` detected")
    # the seed's hook raises at once, usually before the request is even sent; if it was, it was cut off
    for record in list(ctx["fake"].requests):
        assert record.disconnected.wait(5) and not record.completed


def test_during_call_rejection_cancels_the_upstream_call_in_flight(ctx: dict[str, Any]) -> None:
    response = post(ctx, "anything", model="gated", guardrails=["gated-during-guard"])
    assert_guardrail_error(response, "gated-during-guard", "rejected while the upstream was generating")
    record = wait_for_model(ctx["fake"], GATED_MODEL)   # the gate saw it arrive before the rejection
    assert record.disconnected.wait(10)
    assert record.client_disconnected_early and not record.completed


def test_during_call_lets_clean_requests_through(ctx: dict[str, Any]) -> None:
    answer = client(ctx).chat.completions.create(
        model="gpt-4", messages=[{"role": "user", "content": "hi what is the weather"}],
        extra_body={"guardrails": ["custom-during-guard"]})
    assert answer.choices[0].message.content == "Hello from the fake upstream."


# -- post_call ----------------------------------------------------------------------------------------

def test_post_call_blocks_coffee(ctx: dict[str, Any]) -> None:
    response = post(ctx, "what is coffee", model="coffee", guardrails=["custom-post-guard"])
    assert_guardrail_error(response, "custom-post-guard", "Guardrail failed Coffee Detected")


def test_post_call_passes_tea(ctx: dict[str, Any]) -> None:
    answer = client(ctx).chat.completions.create(
        model="tea", messages=[{"role": "user", "content": "what is tea"}],
        extra_body={"guardrails": ["custom-post-guard"]})
    assert answer.choices[0].message.content == TEA


def test_post_call_streaming_buffered_releases_nothing_when_blocked(ctx: dict[str, Any]) -> None:
    frames = stream_frames(ctx, "what is coffee", "coffee", ["custom-post-guard-buffered"])
    assert content_of(frames) == ""                 # not one content chunk reached the client
    assert "[DONE]" not in frames
    error = frames[-1]["error"]
    assert error["type"] == "guardrail_violation"
    assert "'custom-post-guard-buffered'" in error["message"] and "Coffee Detected" in error["message"]


def test_post_call_streaming_buffered_releases_everything_when_approved(ctx: dict[str, Any]) -> None:
    frames = stream_frames(ctx, "what is tea", "tea", ["custom-post-guard-buffered"])
    assert content_of(frames) == TEA
    assert frames[-1] == "[DONE]"


def test_post_call_streaming_pass_through_sends_chunks_then_the_error(ctx: dict[str, Any]) -> None:
    # pass_through (the default): chunks flow as they come; the verdict on the whole answer can only
    # replace [DONE] with an error event. This is the documented difference from buffer.
    frames = stream_frames(ctx, "what is coffee", "coffee", ["custom-post-guard"])
    assert content_of(frames) == COFFEE
    assert "[DONE]" not in frames
    assert frames[-1]["error"]["type"] == "guardrail_violation"


def test_openai_client_raises_on_a_blocked_stream(ctx: dict[str, Any]) -> None:
    stream = client(ctx).chat.completions.create(
        model="coffee", stream=True, messages=[{"role": "user", "content": "what is coffee"}],
        extra_body={"guardrails": ["custom-post-guard-buffered"]})
    with pytest.raises(openai.APIError, match="Coffee Detected"):
        for _ in stream:
            pass


# -- several modes, dynamic params, default_on, order -----------------------------------------------

def test_one_guardrail_with_a_list_of_modes(ctx: dict[str, Any]) -> None:
    response = post(ctx, "say litellm", model="coffee", guardrails=["multi-mode-guard"])
    assert upstream_prompt(ctx) == "say ********"                     # its pre_call ran
    assert_guardrail_error(response, "multi-mode-guard", "Coffee Detected")  # and its post_call


def test_dynamic_params_reach_the_guardrail(ctx: dict[str, Any]) -> None:
    answer = client(ctx).chat.completions.create(
        model="gpt-4", messages=[{"role": "user", "content": "Write a short poem"}],
        extra_body={"guardrails": [{"dynamic-params-guard": {"extra_body": {"success_threshold": 0.9}}}]})
    assert answer.choices[0].message.content == 'dynamic params: {"success_threshold": 0.9}'
    assert ctx["fake"].requests == []   # the guardrail answered; nothing went upstream


def test_dynamic_params_are_empty_for_a_plain_name(ctx: dict[str, Any]) -> None:
    answer = client(ctx).chat.completions.create(
        model="gpt-4", messages=[{"role": "user", "content": "Write a short poem"}],
        extra_body={"guardrails": ["dynamic-params-guard"]})
    assert answer.choices[0].message.content == "dynamic params: {}"


def test_default_on_guardrail_runs_without_being_named(ctx: dict[str, Any]) -> None:
    client(ctx).chat.completions.create(model="gpt-4",
                                        messages=[{"role": "user", "content": "please hide forbidden-word here"}])
    assert upstream_prompt(ctx) == "please hide [masked] here"


def test_guardrails_run_in_config_order_before_callbacks(ctx: dict[str, Any]) -> None:
    # named in the reverse order: config order decides, and the plain callback comes last
    client(ctx).chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "order-test"}],
                                        extra_body={"guardrails": ["order-guard-b", "order-guard-a"]})
    assert upstream_prompt(ctx) == "order-test [order-guard-a] [order-guard-b] [callback]"


# -- errors --------------------------------------------------------------------------------------------

def test_unknown_guardrail_is_a_400_listing_the_configured_ones(ctx: dict[str, Any]) -> None:
    response = post(ctx, "hi", guardrails=["custom-pre-guard", "no-such-guard"])
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "unknown_guardrail" and error["param"] == "guardrails"
    assert "'no-such-guard'" in error["message"]
    assert "custom-during-guard, custom-post-guard" in error["message"]
    assert ctx["fake"].requests == []


def test_guardrails_that_is_not_a_list_is_a_400(ctx: dict[str, Any]) -> None:
    response = post(ctx, "say litellm", guardrails="custom-pre-guard")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "guardrails"
    assert ctx["fake"].requests == []


def test_http_exception_from_a_guardrail_keeps_its_status(ctx: dict[str, Any]) -> None:
    response = post(ctx, "hi", guardrails=["forbidden-guard"])
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "this guardrail forbids the request"


def test_check_shows_guardrails_in_order(ctx: dict[str, Any]) -> None:
    out = subprocess.run([sys.executable, "-m", "trioproxy", "check", str(ctx["config_path"])],
                         capture_output=True, text=True, timeout=60, cwd=ctx["config_path"].parent)
    assert out.returncode == 0, out.stderr
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if line.startswith("  ")}
    assert lines["pre_call"].split("async_pre_call_hook", 1)[1].strip() == (
        "custom-pre-guard (guardrail), multi-mode-guard (guardrail), dynamic-params-guard (guardrail), "
        "mask-forbidden (guardrail), order-guard-a (guardrail), order-guard-b (guardrail), "
        "forbidden-guard (guardrail), extra_guardrails.tag_callback")
    assert "custom-during-guard (guardrail), gated-during-guard (guardrail)" in lines["moderation"]
    assert "custom-post-guard (guardrail), custom-post-guard-buffered (guardrail), multi-mode-guard (guardrail)" \
        in lines["post_call_success"]
    assert "stream_mode=buffer" in out.stdout


# -- selection rules, in-process ---------------------------------------------------------------------

def _plan(guardrails: list[dict[str, Any]]) -> HookPlan:
    config = parse_config({"model_list": [{"model_name": "m", "litellm_params": {"model": "fake/m"}}],
                           "guardrails": guardrails}, "test.yaml", DATA)
    loaded = []
    for spec in config.guardrails:
        obj = Tag(guardrail_name=spec.name, event_hook=spec.modes if len(spec.modes) > 1 else spec.modes[0],
                  default_on=spec.default_on)
        phases = tuple(p for mode in spec.modes for p in GUARDRAIL_MODE_PHASES[mode])
        loaded.append(inspect_handler(spec.name, obj, "guardrails", phases=phases, guardrail=spec))
    return HookPlan(loaded)


class Tag(CustomGuardrail):
    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> None:
        return None

    async def async_moderation_hook(self, data: dict, user_api_key_dict: Any, call_type: str) -> None:
        return None


def test_selection_by_mode_default_on_and_name() -> None:
    plan = _plan([guardrail("pre", "x.Tag", "pre_call"), guardrail("during", "x.Tag", "during_call"),
                  guardrail("always", "x.Tag", "pre_call", default_on=True),
                  guardrail("logs", "x.Tag", "logging_only")])
    names = lambda phase, data: [c.handler for c in plan.calls(phase, data)]  # noqa: E731
    assert names("pre_call", {}) == ["always"]
    assert names("pre_call", {"guardrails": ["pre", "during"]}) == ["pre", "always"]
    assert names("moderation", {"guardrails": ["pre", "during"]}) == ["during"]
    assert names("pre_call", {"guardrails": ["logs"]}) == ["always"]   # logging_only has no call hooks
    assert names("pre_call", {"metadata": {"guardrails": [{"pre": {}}]}}) == ["pre", "always"]


def test_request_selection_forms() -> None:
    assert requested_guardrails({"guardrails": ["a", {"b": {"extra_body": {"x": 1}}}]}) == \
        {"a": {}, "b": {"extra_body": {"x": 1}}}
    guard = CustomGuardrail(guardrail_name="b", event_hook="pre_call")
    assert guard.get_guardrail_dynamic_request_body_params({"guardrails": [{"b": {"extra_body": {"x": 1}}}]}) == {"x": 1}
    assert guard.get_guardrail_dynamic_request_body_params({"guardrails": ["b"]}) == {}
    assert guard.should_run_guardrail({"guardrails": ["b"]}, "pre_call")
    assert not guard.should_run_guardrail({"guardrails": ["b"]}, "post_call")


def test_request_selection_mapping_forms() -> None:
    """LiteLLM's other forms: one ``{name: params}`` mapping, the pre-v1 ``{name: true/false}``
    (issue #15 item 7), at the top level or under ``metadata``; the top level wins."""
    assert requested_guardrails({"guardrails": {"a": {"extra_body": {"x": 1}}, "b": None}}) == \
        {"a": {"extra_body": {"x": 1}}, "b": {}}
    assert requested_guardrails({"metadata": {"guardrails": {"a": True, "b": False}}}) == {"a": {}}
    assert requested_guardrails({"guardrails": ["a"], "metadata": {"guardrails": ["b"]}}) == {"a": {}}
    plan = _plan([guardrail("pre", "x.Tag", "pre_call"), guardrail("always", "x.Tag", "pre_call", default_on=True)])
    names = lambda data: [c.handler for c in plan.calls("pre_call", data)]  # noqa: E731
    for data in ({"guardrails": {"pre": {}}}, {"metadata": {"guardrails": {"pre": True}}},
                 {"metadata": {"guardrails": {"pre": {"extra_body": {}}}}}):
        plan.check_requested_guardrails(data)
        assert names(data) == ["pre", "always"]
    # false means "not asked for": it never switches off a default_on guardrail
    assert names({"metadata": {"guardrails": {"pre": False, "always": False}}}) == ["always"]


def test_guardrails_sharing_a_name_take_turns_and_keep_one_per_request() -> None:
    """The same name twice (LiteLLM load-balances them): one runs per request, in turn, and the
    same one in every phase of that request."""
    plan = _plan([guardrail("lb", "x.Tag", ["pre_call", "during_call"], default_on=True),
                  guardrail("lb", "x.Tag", ["pre_call", "during_call"], default_on=True)])
    first, second = plan.guardrail_groups["lb"]
    seen = []
    for _ in range(4):
        picks: dict[str, int] = {}
        (pre,) = plan.calls("pre_call", {}, picks)
        (during,) = plan.calls("moderation", {}, picks)
        owner = first if pre is first.hooks["pre_call"] else second
        assert during is owner.hooks["moderation"]
        seen.append(owner)
    assert seen == [first, second, first, second]


@pytest.mark.parametrize("bad", ["a", 3, [3], {"a": 3}, [{"a": "x"}]])
def test_malformed_selection_is_rejected(bad: Any) -> None:
    plan = _plan([guardrail("a", "x.Tag", "pre_call")])
    with pytest.raises(BadRequestError, match="guardrails"):
        plan.check_requested_guardrails({"guardrails": bad})
    with pytest.raises(BadRequestError, match="guardrails"):
        plan.check_requested_guardrails({"metadata": {"guardrails": bad}})
