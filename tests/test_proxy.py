"""The composition root (``trioproxy/proxy.py``): services are checked when the proxy is built,
started with the app and drained at shutdown; what each part gets is given, never looked up."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trio

from support.app_harness import build_app, running
from trioproxy.config import ConfigError

SERVICE_HANDLER = '''
import trio

from trioproxy import CustomLogger

EVENTS = []


class Service(CustomLogger):
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED):
        EVENTS.append("run")
        task_status.started()
        await trio.sleep_forever()

    async def drain(self, timeout):
        EVENTS.append(f"drain {timeout:g}")

    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        EVENTS.append("pre_call")


handler = Service()
'''

HALF_SERVICE_HANDLER = '''
from trioproxy import CustomLogger


class HalfService(CustomLogger):
    async def run(self):
        pass

    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        return None


handler = HalfService()
'''


async def test_a_handler_that_is_a_service_starts_with_the_app_and_is_drained(tmp_path: Path) -> None:
    app = build_app(tmp_path, files={"service_handler.py": SERVICE_HANDLER},
                    settings={"callbacks": ["service_handler.handler"]}, general={"graceful_shutdown_timeout": 7})
    proxy = app.proxy
    handler = proxy.services.handlers.services[0]
    assert handler in proxy.services.lifetime
    events = sys.modules[type(handler).__module__].EVENTS
    assert not proxy.started
    async with running(app):
        assert proxy.started and events == ["run"]          # started (and said so) before serving
    assert events == ["run", "drain 7"]
    assert not proxy.started


def test_a_handler_with_run_but_no_drain_is_a_startup_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"callbacks\[0\].*'half_service.handler' defines run but not "
                                          r"async def drain"):
        build_app(tmp_path, files={"half_service.py": HALF_SERVICE_HANDLER},
                  settings={"callbacks": ["half_service.handler"]})


async def test_built_ins_get_the_app_client_and_router_through_their_constructors(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_GUARD_API_BASE", "http://127.0.0.1:1")
    app = build_app(tmp_path, settings={"callbacks": ["llmguard_moderations", "llamaguard_moderations"],
                                        "llamaguard_model_name": "gpt-4o"})
    services = app.proxy.services
    guard, llama = (h.obj for h in services.handlers.plan.handlers)
    assert guard.http_client is services.http_client
    assert llama.router is services.router and llama.cost is services.cost
    await trio.lowlevel.checkpoint()
