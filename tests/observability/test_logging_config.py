"""Logging callbacks are checked at startup: every wrong path or signature is a clear ConfigError."""

from __future__ import annotations

import pytest

from support.app_harness import build_app
from trioproxy.config import ConfigError

CALLBACKS = '''
from trioproxy import CustomLogger


def four(kwargs, completion_response, start_time, end_time):
    pass


def only_kwargs(kwargs):
    pass


async def async_four(kwargs, completion_response, start_time, end_time):
    pass


def two(kwargs, response):
    pass


class NotAFunction:
    pass


class Logger(CustomLogger):
    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        pass


class WrongLogger(CustomLogger):
    def log_success_event(self, kwargs):
        pass


logger = Logger()
wrong_logger = WrongLogger()
count = 3
'''


def problems(tmp_path, **settings) -> list[str]:
    with pytest.raises(ConfigError) as info:
        build_app(tmp_path, files={"cbs.py": CALLBACKS}, settings=settings)
    return info.value.problems


def test_valid_callbacks_load(tmp_path):
    app = build_app(tmp_path, files={"cbs.py": CALLBACKS}, settings={
        "callbacks": ["cbs.logger"],
        "input_callback": ["cbs.only_kwargs", "cbs.four"],
        "success_callback": "cbs.async_four",       # a single path, as the seeds allow
        "failure_callback": ["cbs.four"],
    })
    callbacks = app.proxy.services.logging_sink.callbacks
    assert [(c.name, c.shape, c.is_async) for c in callbacks["pre_api_call"]] == [
        ("cbs.only_kwargs", "kwargs", False), ("cbs.four", "event", False)]
    assert [c.name for c in callbacks["successful_api_call"]] == ["cbs.logger.async_log_success_event",
                                                                  "cbs.async_four"]


def test_each_problem_names_the_file_the_key_and_the_fix(tmp_path):
    found = problems(tmp_path, success_callback=["cbs.fuor", "nomodule.fn", "cbs.two", "cbs.NotAFunction",
                                                 "cbs.count", "azure_storage", "cbs.logger"],
                     input_callback=["cbs.two"])
    source = str(tmp_path / "config.yaml")
    assert all(p.startswith(f"{source}: litellm_settings.") for p in found), found
    text = "\n".join(found)
    assert "success_callback[0]: 'cbs.fuor': module 'cbs' has no attribute 'fuor'; did you mean 'four'?" in text
    assert "success_callback[1]: 'nomodule.fn': cannot find module 'nomodule'" in text
    assert ("success_callback[2]: 'cbs.two': cannot be called as (kwargs, completion_response, start_time, "
            "end_time): two(kwargs, response): too many positional arguments") in text
    assert "success_callback[3]: 'cbs.NotAFunction': is a class, not a function" in text
    assert "success_callback[4]: 'cbs.count': is a int, not a function" in text
    assert ("success_callback[5]: 'azure_storage': 'azure_storage' is one of LiteLLM's logging integrations; trioproxy has "
            "no built-in 'azure_storage' (it has langfuse, otel") in text
    assert "write a logging function that sends to it" in text
    assert "success_callback[6]: 'cbs.logger': is a CustomLogger object" in text
    assert "input_callback[0]: 'cbs.two': cannot be called as (kwargs) or (kwargs," in text
    assert len(found) == 8


def test_a_logging_method_with_the_wrong_signature_is_a_startup_error(tmp_path):
    [problem] = problems(tmp_path, callbacks=["cbs.wrong_logger"])
    assert problem.startswith(f"{tmp_path / 'config.yaml'}: litellm_settings.callbacks[0]: 'cbs.wrong_logger': "
                              "log_success_event cannot be called with the seeds' 4 arguments")
