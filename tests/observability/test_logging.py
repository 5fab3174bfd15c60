"""Logging callbacks through the real app wiring, in-process (``support/app_harness.py``).

What a callback receives (every documented ``kwargs`` field and the structured record), that it
never delays the answer (virtual time for async callbacks, real threads for sync ones), that a
broken one changes nothing, cost in the header and the payload, and the JSON request log.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import orjson
import pytest
import trio

from support.app_harness import (
    MASTER,
    UPSTREAM_SECRET,
    assembled_text,
    build_app,
    collect,
    request,
    running,
)
from trioproxy.observability.logfmt import JsonFormatter
from trioproxy.upstream.fake import FakeProvider

#: the repository (handlers/ is imported from there)
REPO = Path(__file__).resolve().parents[2]

RECORDER = '''
import trio
from trioproxy import CustomLogger


class Recorder(CustomLogger):
    """``log_post_api_call`` is sync (the seeds have no async form): it runs in a worker thread, so
    tests using this recorder run in real time."""

    def __init__(self):
        self.events = []
        self.sleep = 0.0

    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        if (data.get("metadata") or {}).get("explode"):
            raise ValueError("handler echoed sk-upstream-harness-9876543210")

    async def async_log_pre_api_call(self, model, messages, kwargs):
        self.events.append(("pre", kwargs, None, trio.current_time()))

    def log_post_api_call(self, kwargs, response_obj, start_time, end_time):
        self.events.append(("post", kwargs, response_obj, None))

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        await trio.sleep(self.sleep)
        self.events.append(("success", kwargs, response_obj, trio.current_time()))

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        self.events.append(("failure", kwargs, response_obj, trio.current_time()))


handler = Recorder()
'''

SLEEPER = '''
import trio
from trioproxy import CustomLogger


class Sleeper(CustomLogger):
    def __init__(self):
        self.done_at = []

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        await trio.sleep(5)
        self.done_at.append(trio.current_time())


handler = Sleeper()
'''

BLOCKER = '''
import threading
from trioproxy import CustomLogger


class Blocker(CustomLogger):
    def __init__(self):
        self.started = threading.Event()
        self.gate = threading.Event()
        self.finished = False

    def log_success_event(self, kwargs, response_obj, start_time, end_time):
        self.started.set()
        self.gate.wait(30)
        self.finished = True


handler = Blocker()
'''

BROKEN = '''
def explode(kwargs, completion_response, start_time, end_time):
    raise RuntimeError("callback bug")
'''


def handler_of(state):
    return state.handlers.loggers[0].obj


def chat(content: str = "hello", model: str = "gpt-4o", **extra):
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def no_secrets(*values) -> None:
    text = "".join(repr(v) for v in values)
    assert MASTER not in text and UPSTREAM_SECRET not in text


# -- delivery never delays the answer -------------------------------------------------------------

async def test_a_callback_sleeping_5s_does_not_delay_the_answer(tmp_path, autojump_clock):
    app = build_app(tmp_path, files={"sleeper.py": SLEEPER}, settings={"callbacks": ["sleeper.handler"]})
    async with running(app) as state:
        t0 = trio.current_time()
        first = await request(state, chat("one"))
        assert trio.current_time() - t0 == pytest.approx(1.0)     # the fake model's latency, nothing more
        second = await request(state, chat("two"))
        assert trio.current_time() - t0 == pytest.approx(2.0)     # not queued behind the sleeping callback
        assert first.status == second.status == 200
        assert handler_of(state).done_at == []                    # both callbacks still sleeping
    assert [t - t0 for t in handler_of(state).done_at] == [pytest.approx(6.0), pytest.approx(7.0)]


async def test_a_blocking_sync_callback_does_not_delay_the_answer(tmp_path):
    """Real threads: the answer is back while the sync callback is still blocked in its thread."""
    app = build_app(tmp_path, files={"blocker.py": BLOCKER}, settings={"callbacks": ["blocker.handler"]})
    async with running(app) as state:
        blocker = handler_of(state)
        response = await request(state, chat(model="unpriced"))
        assert response.status == 200 and not blocker.finished
        await trio.to_thread.run_sync(blocker.started.wait, 10)   # it is running, in a worker thread
        second = await request(state, chat("again", model="unpriced"))
        assert second.status == 200 and not blocker.finished
        blocker.gate.set()
    assert blocker.finished


async def test_a_raising_callback_does_not_change_the_answer(tmp_path, caplog):
    plain = build_app(tmp_path / "plain")
    broken = build_app(tmp_path / "broken", files={"broken.py": BROKEN},
                       settings={"success_callback": ["broken.explode"]})
    async with running(plain) as state:
        expected = await request(state, chat(model="unpriced"))
    async with running(broken) as state:
        got = await request(state, chat(model="unpriced"))
    assert got.status == expected.status == 200
    assert orjson.loads(got.body)["choices"] == orjson.loads(expected.body)["choices"]
    assert any("broken.explode raised" in r.getMessage() for r in caplog.records)
    assert 'trioproxy_logging_callback_errors_total{callback="broken.explode",reason="error"} 1.0' \
        in broken.proxy.services.metrics.render().decode()


# -- what callbacks receive -----------------------------------------------------------------------

async def test_success_kwargs_carry_every_documented_field(tmp_path):
    app = build_app(tmp_path, files={"rec.py": RECORDER}, settings={"callbacks": ["rec.handler"]}, latency=0)
    body = chat("hi there", temperature=0.5, user="end-user-1",
                metadata={"hello": "world", "tags": ["team-a", "batch"]})
    async with running(app) as state:
        response = await request(state, body)
    assert response.status == 200
    events = handler_of(state).events
    assert [e[0] for e in events] == ["pre", "post", "success"]
    pre, post, success = (e[1] for e in events)
    sent = pre["additional_args"]["complete_input_dict"]

    # pre_api_call: the exact body sent upstream
    assert pre["log_event_type"] == "pre_api_call"
    assert sent == {"model": "gpt-4o", "messages": body["messages"], "temperature": 0.5, "user": "end-user-1"}
    assert pre["input"] == body["messages"] and pre["end_time"] is None

    kwargs = success
    assert kwargs["log_event_type"] == "successful_api_call" and post["log_event_type"] == "post_api_call"
    assert kwargs["model"] == "gpt-4o"
    assert kwargs["messages"] == body["messages"]
    assert kwargs["optional_params"] == {"temperature": 0.5, "user": "end-user-1"}
    assert kwargs["litellm_params"]["metadata"] == {"hello": "world", "tags": ["team-a", "batch"],
                                                    "requester_ip_address": None}   # in-process: no peer
    assert kwargs["litellm_params"]["model_group"] == "gpt-4o"
    assert isinstance(kwargs["start_time"], dt.datetime) and isinstance(kwargs["end_time"], dt.datetime)
    assert kwargs["end_time"] >= kwargs["start_time"]   # (real clock: timings are perf_counter)
    assert kwargs["api_key"] == "sk-...3210"                                    # masked
    assert kwargs["additional_args"]["complete_input_dict"] == sent
    assert json.loads(kwargs["original_response"]) == orjson.loads(response.body)
    assert "complete_streaming_response" not in kwargs                         # only for streams
    assert kwargs["cache_hit"] is False
    usage = orjson.loads(response.body)["usage"]
    assert kwargs["response_cost"] == pytest.approx(usage["prompt_tokens"] * 2.5e-6 + usage["completion_tokens"] * 1e-5)
    assert response.headers["x-trioproxy-response-cost"] == format(kwargs["response_cost"], ".10g")
    assert events[2][2] == orjson.loads(response.body)                          # response_obj

    record = kwargs["standard_logging_object"]
    assert record["id"] == kwargs["litellm_call_id"] == response.headers["x-trioproxy-request-id"]
    assert record["call_type"] == "completion" and record["endpoint"] == "chat/completions"
    assert record["model"] == "gpt-4o" and record["deployment"] == "fake/gpt-4o"
    assert (record["prompt_tokens"], record["completion_tokens"], record["total_tokens"]) == \
        (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"])
    assert record["response_cost"] == kwargs["response_cost"] and record["cost_source"] == "usage"
    assert record["status"] == "success" and record["status_code"] == 200 and record["error_class"] is None
    timings = record["timings"]
    assert timings["total"] >= timings["upstream"] >= 0 and timings["time_to_first_token"] is None
    assert set(timings["phases"]) == {"pre_call"}
    assert [h["phase"] for h in record["timings"]["hooks"]] == ["pre_call"]
    assert record["user"] == "end-user-1" and record["key_alias"] == "sk-...6789" and record["user_id"] == "admin"
    assert record["tags"] == ["team-a", "batch"] and record["metadata"]["hello"] == "world"
    assert record["attempts"] == 1 and record["cache_hit"] is False
    no_secrets(events)


async def test_failure_kwargs_carry_the_exception_and_no_secret(tmp_path):
    app = build_app(tmp_path, files={"rec.py": RECORDER}, settings={"callbacks": ["rec.handler"]}, latency=0)
    async with running(app) as state:
        response = await request(state, chat(metadata={"explode": True}))
    assert response.status == 500
    [(kind, kwargs, response_obj, _)] = handler_of(state).events
    assert kind == "failure" and kwargs["log_event_type"] == "failed_api_call" and response_obj is None
    assert type(kwargs["exception"]).__name__ == "HookCrashedError"
    assert "ValueError: handler echoed sk-...3210" in kwargs["traceback_exception"]   # scrubbed
    assert kwargs["response_cost"] is None and kwargs["additional_args"]["complete_input_dict"] is None
    record = kwargs["standard_logging_object"]
    assert (record["status"], record["status_code"], record["error_class"]) == ("failure", 500, "HookCrashedError")
    no_secrets(kwargs, kwargs["exception"], kwargs["exception"].__cause__)


async def test_streaming_success_carries_the_assembled_answer_and_its_cost(tmp_path):
    app = build_app(tmp_path, files={"rec.py": RECORDER}, settings={"callbacks": ["rec.handler"]}, latency=0)
    async with running(app) as state:
        response = await request(state, chat("stream this please", stream=True))
        chunks = await collect(response)
    assert "x-trioproxy-response-cost" not in response.headers            # not known at header time
    assert not any(isinstance(c, dict) and c.get("usage") for c in chunks)  # the client did not ask
    kinds = [e[0] for e in handler_of(state).events]
    assert kinds == ["pre", "post", "success"]
    kwargs = handler_of(state).events[-1][1]
    complete = kwargs["complete_streaming_response"]
    assert complete["choices"][0]["message"]["content"] == assembled_text(chunks)
    assert complete["usage"]["completion_tokens"] > 0
    assert kwargs["response_cost"] > 0 and kwargs["standard_logging_object"]["cost_source"] == "usage"
    assert kwargs["standard_logging_object"]["timings"]["time_to_first_token"] >= 0


# -- cost -------------------------------------------------------------------------------------------

async def test_unpriced_model_costs_none_not_zero(tmp_path):
    app = build_app(tmp_path, files={"rec.py": RECORDER}, settings={"callbacks": ["rec.handler"]}, latency=0)
    async with running(app) as state:
        response = await request(state, chat(model="unpriced"))
    assert "x-trioproxy-response-cost" not in response.headers
    assert handler_of(state).events[-1][1]["response_cost"] is None
    assert 'trioproxy_unpriced_requests_total{model="unpriced"} 1.0' in state.metrics.render().decode()


async def test_deployment_prices_override_the_table(tmp_path, autojump_clock):
    models = [{"model_name": "custom", "litellm_params": {"model": "fake/gpt-4o", "input_cost_per_token": 0.001,
                                                          "output_cost_per_token": 0.002}}]
    app = build_app(tmp_path, models=models)
    async with running(app) as state:
        response = await request(state, chat(model="custom"))
    usage = orjson.loads(response.body)["usage"]
    expected = usage["prompt_tokens"] * 0.001 + usage["completion_tokens"] * 0.002
    assert float(response.headers["x-trioproxy-response-cost"]) == pytest.approx(expected)


class NoUsageProvider(FakeProvider):
    """An upstream that reports no usage (some OpenAI-compatible servers do not)."""

    async def send(self, deployment, endpoint, body):
        response = await super().send(deployment, endpoint, body)
        parsed = orjson.loads(response.body)
        parsed.pop("usage")
        response.body = orjson.dumps(parsed)
        return response


async def test_cost_is_estimated_off_the_trio_thread_when_usage_is_missing(tmp_path):
    app = build_app(tmp_path, files={"rec.py": RECORDER}, settings={"callbacks": ["rec.handler"]},
                    models=[{"model_name": "gpt-4o", "litellm_params": {"model": "fake/gpt-4o"}}])
    app.proxy.services.providers["fake"] = NoUsageProvider()
    async with running(app) as state:
        response = await request(state, chat("count my tokens please"))
    assert "x-trioproxy-response-cost" not in response.headers
    kwargs = handler_of(state).events[-1][1]
    record = kwargs["standard_logging_object"]
    assert record["cost_source"] == "estimate" and record["prompt_tokens"] > 0 and record["completion_tokens"] > 0
    assert kwargs["response_cost"] == pytest.approx(record["prompt_tokens"] * 2.5e-6 + record["completion_tokens"] * 1e-5)
    metrics = state.metrics.render().decode()
    assert f'trioproxy_tokens_total{{model="gpt-4o",type="prompt"}} {float(record["prompt_tokens"])}' in metrics


# -- the structured request log (--log-format json) ------------------------------------------------

async def test_one_json_line_per_request_with_secrets_masked(tmp_path, autojump_clock, caplog):
    app = build_app(tmp_path)
    logger = logging.getLogger("trioproxy.requests")
    logger.setLevel(logging.INFO)
    try:
        with caplog.at_level(logging.INFO, logger="trioproxy.requests"):
            async with running(app) as state:
                ok = await request(state, chat())
                bad = await request(state, chat(model="no-such-model"))
    finally:
        logger.setLevel(logging.NOTSET)
    lines = [JsonFormatter().format(r) for r in caplog.records if r.name == "trioproxy.requests"]
    entries = [json.loads(line) for line in lines]
    assert [e["id"] for e in entries] == [ok.headers["x-trioproxy-request-id"], bad.headers["x-trioproxy-request-id"]]
    assert [(e["status"], e["status_code"]) for e in entries] == [("success", 200), ("failure", 404)]
    assert entries[0]["response_cost"] > 0 and entries[0]["key_alias"] == "sk-...6789"
    assert MASTER not in "".join(lines) and UPSTREAM_SECRET not in "".join(lines)


# -- the seeds' examples (handlers/) -----------------------------------------------------------------

async def test_example_handlers_run_as_the_seeds_print(tmp_path, capsys):

    root = REPO
    app = build_app(root, settings={
        "callbacks": ["handlers.custom_logger.proxy_handler_instance"],
        "input_callback": ["handlers.function_callbacks.get_transformed_inputs"],
        "success_callback": ["handlers.function_callbacks.custom_callback",
                             "handlers.function_callbacks.async_test_logging_fn",
                             "handlers.function_callbacks.log_metadata",
                             "handlers.cost_tracking.track_cost_callback"],
        "failure_callback": ["handlers.function_callbacks.custom_callback"],
    })
    async with running(app) as state:
        # the handler file is one module per process: earlier tests may have used this instance
        handler_of(state).states.clear()
        handler_of(state).errors.clear()
        capsys.readouterr()
        assert (await request(state, chat(model="unpriced", metadata={"hello": "world"}))).status == 200
    out = capsys.readouterr().out
    for line in ("Pre-API Call", "Post-API Call", "On Async Success", "LITELLM: in custom callback function",
                 "On Async Success!", "params to model {'model': 'unpriced-model'", "{'hello': 'world'}",
                 "regular response_cost None"):
        assert line in out, line
    handler = handler_of(state)
    assert handler.states == ["pre", "post", "success"] and handler.errors == []
