"""The serving process freezes its startup heap and sets the measured GC thresholds before it serves.

Why a test: the figures behind ``GC_THRESHOLDS`` (CPU per relayed delta, the longest GC pause under
1,000 open streams) come from ``bench/``; what a test can hold is that ``trioproxy run`` applies the
policy, in that order (a threshold set before the freeze would let startup garbage be frozen), and
before the server starts, on the single-process path and in each ``--workers`` worker.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from trioproxy.cli import main as cli_main
from trioproxy.cli import run as run_module
from trioproxy.cli import server_connection

CONFIG = """
    model_list:
      - model_name: gpt-4o
        litellm_params:
          model: openai/gpt-4o
          api_base: http://127.0.0.1:9/v1
          api_key: sk-upstream-gc-test-0123456789
    general_settings:
      master_key: sk-gc-test-master-0123456789
"""


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The GC calls and the server start, in order; nothing is really frozen in the test process."""
    calls: list[Any] = []
    monkeypatch.setattr(gc, "collect", lambda *a: calls.append("collect") or 0)
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    monkeypatch.setattr(gc, "set_threshold", lambda *t: calls.append(("set_threshold", t)))
    monkeypatch.setattr(run_module.trio, "run", lambda *a, **k: calls.append("serve"))
    return calls


def test_single_process_run_tunes_the_gc_before_serving(tmp_path: Path, recorded: list[Any]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(textwrap.dedent(CONFIG))
    assert cli_main(["run", str(config), "--host", "127.0.0.1", "--port", "0"]) == 0
    assert recorded == ["collect", "freeze", ("set_threshold", run_module.GC_THRESHOLDS), "serve"]


def test_each_worker_tunes_the_gc_when_its_app_is_built(tmp_path: Path, recorded: list[Any],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(textwrap.dedent(CONFIG))
    monkeypatch.setenv("TRIOPROXY_CONFIG", str(config))
    monkeypatch.setattr(run_module, "_CONFIG_ENV", "TRIOPROXY_CONFIG")
    monkeypatch.setattr(run_module, "install_log_filter", lambda scrubber: None)
    monkeypatch.setattr(run_module, "setup_logging", lambda *a: None)
    monkeypatch.setattr(server_connection, "install", lambda: None)   # Hypercorn stays untouched here
    run_module.create_app_from_env()
    assert recorded == ["collect", "freeze", ("set_threshold", run_module.GC_THRESHOLDS)]


def test_the_real_calls_leave_the_thresholds_and_a_frozen_heap() -> None:
    """Unpatched, in a fresh interpreter (freezing the test process's heap would outlive the test)."""
    code = ("import gc; from trioproxy.cli.run import _tune_gc, GC_THRESHOLDS; _tune_gc(); "
            "assert gc.get_threshold() == GC_THRESHOLDS, gc.get_threshold(); "
            "assert gc.get_freeze_count() > 10_000, gc.get_freeze_count(); print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
