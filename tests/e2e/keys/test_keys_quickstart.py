"""The README's quickstart, as written: ``config.example.yaml``, a key made with the master key, the
OpenAI SDK with that key. The example's ``database_url: sqlite:///proxy.db`` is relative to the
config file, wherever the proxy is started from."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import openai

from support.proxy_process import ProxyProcess

ROOT = Path(__file__).resolve().parents[3]


def test_the_quickstart_with_a_virtual_key(tmp_path: Path) -> None:
    config_dir, elsewhere = tmp_path / "conf", tmp_path / "elsewhere"
    config_dir.mkdir()
    elsewhere.mkdir()
    config = config_dir / "config.example.yaml"
    shutil.copyfile(ROOT / "config.example.yaml", config)
    with ProxyProcess(config, cwd=elsewhere) as proxy:
        made = httpx.post(f"{proxy.base_url}/key/generate", headers={"Authorization": "Bearer sk-1234"},
                          json={"models": ["gpt-4o"], "duration": "30d"}, timeout=30)
        assert made.status_code == 200, made.text
        key = made.json()["key"]
        client = openai.OpenAI(base_url=proxy.url, api_key=key, max_retries=0)
        answer = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content
        audit = httpx.get(f"{proxy.base_url}/audit", headers={"Authorization": "Bearer sk-1234"}, timeout=30)
        assert audit.json()["total"] == 1                     # store_audit_logs: true in the example
    assert (config_dir / "proxy.db").exists() and not (elsewhere / "proxy.db").exists()
