"""The README's first command: ``trioproxy run`` with no config serves the fake models and keeps keys
and spend in a SQLite file of the working directory (no key, no network, no server to install)."""

from __future__ import annotations

from pathlib import Path

import httpx

from support.proxy_process import ProxyProcess
from support.spend_support import wait_for


def test_the_embedded_defaults_keep_keys_and_spend_in_a_sqlite_file(tmp_path: Path) -> None:
    with ProxyProcess(None, cwd=tmp_path) as proxy:
        assert (tmp_path / "trioproxy.db").exists()
        key = httpx.post(f"{proxy.base_url}/key/generate", json={"max_budget": 1}, timeout=30).json()["key"]
        answer = httpx.post(f"{proxy.base_url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}, timeout=30)
        assert answer.status_code == 200, answer.text
        request_id = answer.json()["id"]
        logs = wait_for(lambda: httpx.get(f"{proxy.base_url}/spend/logs", params={"request_id": request_id},
                                          timeout=30).json(), what="the request's spend record")
        assert logs[0]["request_id"] == request_id
