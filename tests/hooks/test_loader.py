"""Loading handlers: argument binding by name and position, and every startup error."""

from __future__ import annotations

from pathlib import Path

import pytest

from trioproxy import CustomLogger
from trioproxy.hooks.loader import (
    HandlerLoadError,
    check_dotted_path,
    import_object,
    inspect_handler,
)


class Short:
    async def async_moderation_hook(self, data):
        return data


class Long:
    async def async_moderation_hook(self, data, user_api_key_dict, call_type):
        return (data, user_api_key_dict, call_type)


class Renamed:
    async def async_post_call_failure_hook(self, data, exception, user_api_key_dict, traceback_str=None):
        return (data, exception, user_api_key_dict, traceback_str)


class Kwargs:
    async def async_pre_call_hook(self, **kwargs):
        return sorted(kwargs)


VALUES = {"data": "D", "request_data": "D", "user_api_key_dict": "U", "call_type": "completion", "cache": "C",
          "original_exception": "E", "traceback_str": "T"}


async def test_short_and_long_forms_bind():
    assert await inspect_handler("s", Short(), "k").hooks["moderation"].call(VALUES) == "D"
    assert await inspect_handler("l", Long(), "k").hooks["moderation"].call(VALUES) == ("D", "U", "completion")


async def test_aliases_and_kwargs_bind():
    assert await inspect_handler("r", Renamed(), "k").hooks["failure"].call(VALUES) == ("D", "E", "U", "T")
    assert await inspect_handler("k", Kwargs(), "k").hooks["pre_call"].call(VALUES) == [
        "cache", "call_type", "data", "user_api_key_dict"]


def test_inherited_defaults_are_not_registered():
    loaded = inspect_handler("c", CustomLogger(), "k")
    assert loaded.hooks == {} and loaded.logging == {}


def test_unsuppliable_parameter_is_an_error():
    class Bad:
        async def async_moderation_hook(self, data, user_api_key_dict, call_type, extra_thing):
            pass

    with pytest.raises(HandlerLoadError, match="extra_thing"):
        inspect_handler("b", Bad(), "k")


def test_sync_hook_and_sync_iterator_are_errors():
    class Sync:
        def async_post_call_success_hook(self, data, user_api_key_dict, response):
            pass

    class SyncIterator:
        def async_post_call_streaming_iterator_hook(self, user_api_key_dict, response, request_data):
            return response

    with pytest.raises(HandlerLoadError, match="must be 'async def'"):
        inspect_handler("s", Sync(), "k")
    with pytest.raises(HandlerLoadError, match="async generator"):
        inspect_handler("s", SyncIterator(), "k")


def test_misspelt_hook_names_are_errors():
    class Typo:
        async def async_moderaton_hook(self, data):
            pass

        async def async_helper_for_me(self):   # not close to a hook: fine
            pass

    with pytest.raises(HandlerLoadError, match="did you mean 'async_moderation_hook'"):
        inspect_handler("t", Typo(), "k")


def test_import_object_errors(tmp_path: Path):
    (tmp_path / "withclass.py").write_text(
        "class H:\n    def __init__(self):\n        raise ValueError('no config')\n"
        "class Ok:\n    async def async_moderation_hook(self, data):\n        pass\n")
    with pytest.raises(HandlerLoadError, match="not a dotted path"):
        import_object("nodots", tmp_path)
    with pytest.raises(HandlerLoadError, match="creating withclass.H\\(\\) failed: ValueError: no config"):
        import_object("withclass.H", tmp_path)
    assert type(import_object("withclass.Ok", tmp_path)).__name__ == "Ok"   # a class is instantiated


def test_module_next_to_config_wins_over_sys_path(tmp_path: Path):
    import sys

    (tmp_path / "json.py").write_text("marker = 'next to the config'\n")
    real_json = sys.modules["json"]
    try:
        assert import_object("json.marker", tmp_path) == "next to the config"
    finally:
        # the loader keeps the config's directory on sys.path (siblings import from there): take it
        # off, and put the real json back, or every later `import json` finds this file
        while str(tmp_path) in sys.path:
            sys.path.remove(str(tmp_path))
        sys.modules["json"] = real_json


def test_a_file_named_twice_is_one_module(tmp_path: Path):
    (tmp_path / "twice.py").write_text("count = {'n': 0}\nclass H:\n    pass\nfirst = H()\nsecond = H()\n")
    first = import_object("twice.first", tmp_path)
    second = import_object("twice.second", tmp_path)
    assert type(first) is type(second)          # one module: the same class, the same globals
    assert import_object("twice.count", tmp_path) is import_object("twice.count", tmp_path)


# -- only module paths -------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/etc/evil.handler", "C:\\evil.handler", "./a.b", "../a.b", "a..b",
                                  ".a.b", "a-b.c", "a.b c", "nodots"])
def test_only_module_paths(path: str) -> None:
    with pytest.raises(HandlerLoadError):
        check_dotted_path(path)


@pytest.mark.parametrize("path", ["custom_callbacks.proxy_handler_instance", "pkg.sub.module.Handler", "é.x"])
def test_module_paths_pass(path: str) -> None:
    check_dotted_path(path)
