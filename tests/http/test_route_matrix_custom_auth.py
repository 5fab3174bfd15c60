"""The route × role matrix (``route_matrix.json``) holds for callers that ``general_settings.custom_auth``
returns, through a real ``trioproxy run``: a function that answers each role's ``UserAPIKeyAuth`` gets,
route by route, the same decision as the virtual key of that role (401/403, or through to the
handler) — custom auth is one more way to say who calls, never a way around the route rules.

The one expected difference: a ``proxy_admin`` returned by the function is not the master key, so
master-key-only routes (``rule: master_key``) refuse it. The "team admin" column is not compared:
team membership roles come from the database, not from custom auth (docs/access.md).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.proxy_process import ProxyProcess, write_config

MATRIX_FILE = Path(__file__).with_name("route_matrix.json")
PLACEHOLDERS = {"key": "sk-not-a-real-key-000000", "id": "1", "model": "fake-chat", "asset": "swagger-ui.css",
                "subpath": "x"}
TEAM = "t-other"
MASTER = "sk-master-matrix-custom-0123456789"

AUTH_FILE = '''
from trioproxy import UserAPIKeyAuth

ROLES = {"ca-virtual": None, "ca-internal": "internal_user", "ca-viewer": "proxy_admin_viewer", "ca-admin": "proxy_admin"}


async def user_api_key_auth(request, api_key):
    if api_key not in ROLES:
        raise Exception("Invalid API key")
    user = {"ca-internal": "u-internal", "ca-viewer": "u-viewer", "ca-admin": "u-admin"}.get(api_key)
    return UserAPIKeyAuth(api_key=api_key, user_id=user, user_role=ROLES[api_key])
'''

#: matrix column → the key the custom auth function knows (None: no key sent)
CALLERS = {"none": None, "invalid key": "sk-not-known-0123456789", "virtual key": "ca-virtual",
           "internal user": "ca-internal", "viewer": "ca-viewer", "admin": "ca-admin"}


def _concrete(template: str) -> str:
    return re.sub(r"\{(\w+)(?::path)?\}", lambda m: PLACEHOLDERS[m.group(1)], template)


def _call(client: httpx.Client, method: str, path: str, key: str | None) -> int:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    if method == "GET":
        return client.get(path, params={"team_id": TEAM}, headers=headers).status_code
    body = {"team_id": TEAM} if path.startswith("/team/") else {}
    return client.request(method, path, json=body, headers=headers).status_code


def _decision(status: int) -> str:
    return str(status) if status in (401, 403) else "through"


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("route_matrix_custom_auth")
    config = {
        "model_list": [{"model_name": "fake-chat", "litellm_params": {"model": "fake/demo"}}],
        "litellm_settings": {"public_model_groups": ["fake-chat"]},
        "general_settings": {
            "master_key": MASTER, "database_url": f"sqlite:///{directory / 'proxy.db'}", "block_robots": True,
            "custom_auth": "matrix_auth.user_api_key_auth",
            # the "invalid key" column's refusals count as failed authentications from 127.0.0.1:
            # past 60 the failed-auth limit would answer 429 (tests/access/test_access_auth_failures.py)
            "auth_rate_limit_max_failures_per_ip": 0,
            "pass_through_endpoints": [{"path": "/partner", "target": "http://127.0.0.1:9/api", "auth": True,
                                        "methods": ["POST"]}]},
    }
    with ProxyProcess(write_config(directory, config, files={"matrix_auth.py": AUTH_FILE})) as process:
        yield process


def test_custom_auth_callers_get_the_matrix_decisions(proxy: ProxyProcess) -> None:
    stored: dict[str, dict[str, int]] = json.loads(MATRIX_FILE.read_text())
    routes = httpx.get(proxy.base_url + "/routes", timeout=30).json()["routes"]
    rules = {f"{m} {r['path']}": r["rule"] for r in routes for m in r["methods"]}
    differing: dict[str, Any] = {}
    through = refused = 0
    with httpx.Client(base_url=proxy.base_url, timeout=60) as client:
        for row in sorted(stored):
            method, template = row.split(" ", 1)
            for column, key in CALLERS.items():
                expected = _decision(stored[row][column])
                if column == "admin" and rules.get(row) == "master_key":
                    expected = "403"
                got = _decision(_call(client, method, _concrete(template), key))
                if got != expected:
                    differing[f"{row} [{column}]"] = (expected, got)
                through += got == "through"
                refused += got != "through"
    assert not differing, differing
    assert through > 100 and refused > 100, (through, refused)   # both kinds of decision were compared
