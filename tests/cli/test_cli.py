"""The command line as a user runs it: ``trioproxy check``, ``trioproxy run``, ``--version``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

import trioproxy
from support.proxy_process import ProxyProcess
from trioproxy.cli import main as cli_main

TRIOPROXY = str(Path(sys.executable).parent / "trioproxy")
SECRET = "sk-cli-test-SECRET-9876543210wxyz"
URL_PASSWORD = "urlpass-SECRET-4242"
CRED_BASE = f"http://alice:{URL_PASSWORD}@upstream.test/v1"


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            module: bool = False) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "trioproxy", *args] if module else [TRIOPROXY, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=cwd,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def write(directory: Path, text: str, name: str = "config.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


GOOD = """
    model_list:
      - model_name: gpt-4o
        litellm_params:
          model: openai/gpt-4o
          api_base: http://127.0.0.1:9/v1
          api_key: os.environ/TP_CLI_TEST_KEY
          temperature: 0.1
      - model_name: demo
        litellm_params:
          model: fake/demo
    litellm_settings:
      store_audit_logs: true
      service_callback: ["x"]
    general_settings:
      master_key: sk-cli-master-key-000111222
      database_url: postgresql://proxy:db-PASSWORD-77@db.internal:5432/proxy
"""


def test_version() -> None:
    for module in (False, True):
        result = run_cli("--version", module=module)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"trioproxy {trioproxy.__version__}"


def test_check_a_good_config_prints_models_masked_and_the_hook_table(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    result = run_cli("check", str(path), env={"TP_CLI_TEST_KEY": SECRET})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "models:" in out
    assert "gpt-4o" in out and "openai/gpt-4o at http://127.0.0.1:9/v1" in out
    assert "demo" in out and "fake/demo" in out
    assert "sk-...wxyz" in out, "the api_key is shown masked"
    assert "extra params ['temperature']" in out
    # each deployment's /v1/responses route and the rule that decided it (docs/responses_api.md)
    assert "/v1/responses: translated to chat completions: an OpenAI-compatible server may not serve" in out
    assert "/v1/responses: translated to chat completions: the 'fake' provider takes chat completions" in out
    assert "master key: sk-...1222" in out
    assert SECRET not in out + result.stderr
    assert "sk-cli-master-key-000111222" not in out + result.stderr
    assert "hooks, in the order they run" in out
    for method in ("async_pre_call_hook", "async_moderation_hook", "async_post_call_success_hook",
                   "async_post_call_failure_hook"):
        assert method in out
    assert "warning: " in out and "service_callback" in out
    assert "database: postgresql://proxy:***@db.internal:5432/proxy; audit log: on" in out
    assert "db-PASSWORD-77" not in out + result.stderr
    assert out.rstrip().endswith("config OK")


def test_check_without_a_master_key_says_the_proxy_is_open(tmp_path: Path) -> None:
    path = write(tmp_path, """
        model_list:
          - model_name: demo
            litellm_params: {model: fake/demo}
    """)
    result = run_cli("check", str(path))
    assert result.returncode == 0, result.stderr
    assert "master key: NONE" in result.stdout
    assert "database: NONE" in result.stdout


BAD_CONFIGS = {
    "unknown-key": ("""
        model_list:
          - model_name: a
            litellm_params: {model: fake/a}
        general_settings:
          master_kye: sk-1234
     """, ["general_settings.master_kye", "did you mean 'master_key'?"]),
    "near-miss-param": ("""
        model_list:
          - model_name: a
            litellm_params: {model: openai/a, api_bse: "http://127.0.0.1:9/v1"}
     """, ["model_list[0].litellm_params.api_bse", "did you mean 'api_base'?"]),
    "wrong-type": ("""
        model_list:
          - model_name: a
            litellm_params: {model: fake/a, timeout: soon}
     """, ["model_list[0].litellm_params.timeout: expected a number"]),
    "missing-env-var": ("""
        model_list:
          - model_name: a
            litellm_params: {model: openai/a, api_key: os.environ/TP_CLI_SURELY_NOT_SET}
     """, ["model_list[0].litellm_params.api_key", "TP_CLI_SURELY_NOT_SET"]),
    "unknown-provider": ("""
        model_list:
          - model_name: a
            litellm_params: {model: sagemaker/a}
     """, ["unknown provider 'sagemaker'"]),
    "invalid-yaml": ("""
        model_list:
          - model_name: a
           litellm_params: [
     """, ["invalid YAML", "line 4, column"]),
    "missing-handler": ("""
        model_list:
          - model_name: a
            litellm_params: {model: fake/a}
        litellm_settings:
          callbacks: custom_callbacks.proxy_handler_instance
     """, ["litellm_settings.callbacks[0]", "custom_callbacks"]),
    "several-at-once": ("""
        model_list:
          - model_name: a
            litellm_params: {model: fake/a, timeout: soon}
        modle_list: []
     """, ["model_list[0].litellm_params.timeout", "did you mean 'model_list'?"]),
}


@pytest.mark.parametrize("kind", list(BAD_CONFIGS))
def test_check_a_bad_config_exits_1_with_the_problem(tmp_path: Path, kind: str) -> None:
    text, fragments = BAD_CONFIGS[kind]
    path = write(tmp_path, text)
    result = run_cli("check", str(path), cwd=tmp_path)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "config is invalid:" in result.stderr
    assert str(path) in result.stderr, "each problem names the file"
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)
    assert "Traceback" not in result.stderr
    assert "config OK" not in result.stdout


def test_check_a_missing_file(tmp_path: Path) -> None:
    result = run_cli("check", str(tmp_path / "nope.yaml"))
    assert result.returncode == 1
    assert f"{tmp_path / 'nope.yaml'}: file not found" in result.stderr


def test_run_a_bad_config_exits_1_with_the_problem_in_its_log(tmp_path: Path) -> None:
    path = write(tmp_path, BAD_CONFIGS["wrong-type"][0])
    result = run_cli("run", str(path), "--port", "0")
    assert result.returncode == 1
    assert "model_list[0].litellm_params.timeout: expected a number" in result.stderr
    assert "Traceback" not in result.stderr
    assert "listening" not in result.stdout


def test_run_without_a_config_serves_the_embedded_defaults_and_warns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the process (and its log file) live there
    proxy = ProxyProcess(None)
    try:
        response = httpx.post(f"{proxy.url}/chat/completions", timeout=30,
                              json={"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "hello there"}]})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["object"] == "chat.completion"
        assert "hello there" in body["choices"][0]["message"]["content"]
        models = httpx.get(f"{proxy.url}/models", timeout=30).json()
        assert "gpt-3.5-turbo" in [m["id"] for m in models["data"]]
        assert proxy.terminate() == 0
        logs = proxy.logs()
        assert "WARNING" in logs and "NO master_key IS SET" in logs
        assert "!!!!!!!!" in logs
    finally:
        proxy.kill()


# -- check never prints a secret -------------------------------------------------------------------

def test_check_does_not_print_api_base_credentials(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(textwrap.dedent(f"""
        model_list:
          - model_name: m
            litellm_params: {{model: openai/x, api_base: "{CRED_BASE}"}}
    """))
    assert cli_main(["check", str(path)]) == 0
    out = capsys.readouterr()
    assert "upstream.test" in out.out
    assert URL_PASSWORD not in out.out + out.err


def test_check_lists_limits_and_budgets_in_the_pre_call_phase_with_a_database(tmp_path: Path) -> None:
    """Admission is a built-in pre-call step, after the general_settings policies and before the
    handlers; present only with a database (docs/spend.md)."""
    body = """
        model_list:
          - model_name: demo
            litellm_params: {model: fake/demo}
        general_settings:
          master_key: sk-cli-master-key-000111222
          enforce_user_param: true
    """
    without = run_cli("check", str(write(tmp_path, body, "no-db.yaml")))
    assert without.returncode == 0, without.stderr
    assert "limits_and_budgets" not in without.stdout
    path = write(tmp_path, body + f"      database_url: sqlite:///{tmp_path}/proxy.db\n")
    result = run_cli("check", str(path))
    assert result.returncode == 0, result.stderr
    (row,) = [line for line in result.stdout.splitlines() if "async_pre_call_hook" in line]
    assert row.split()[-2:] == ["enforce_user_param,", "limits_and_budgets"]
    assert "budgets, rate limits and spend records: on" in result.stdout


def test_run_on_a_port_already_taken_says_so_in_one_line(tmp_path: Path) -> None:
    """A second ``trioproxy run`` on the port of the first (the README's first command, run twice):
    one clear line and exit 1, not an exception group's traceback."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "trioproxy", "run", "--port", str(port)], capture_output=True,
                              text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "trioproxy could not start:" in done.stderr and "Address already in use" in done.stderr
    assert "another process listens on that address" in done.stderr
    assert "Traceback" not in done.stderr
