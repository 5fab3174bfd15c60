"""Every route the app registers × every kind of caller, against a stored matrix (issue #12).

The routes come from the app itself (``route_list.registered_routes``: the Quart url map, the fast
path's endpoints with Azure's forms, the configured pass-through endpoints), never from a list kept
here; each is called through a real ``trioproxy run`` (SQLite store) by seven callers: no key, an
invalid key, a virtual key without a user, a team admin of another team (the request names team
``t-other``), an internal user, a proxy-admin viewer and the master key. The statuses must equal
``route_matrix.json``; a route the app serves without an entry there fails the test (add its row
to ``access/catalog.py`` and its entry here: ``UPDATE_ROUTE_MATRIX=1`` rewrites the file from what
the proxy answers — read the diff before committing it).

Each cell is the final status: 401/403 are the route decision (or a handler's object check, e.g. a
team admin asking about another team); any other status means the caller got through to the
handler (a 400/404/501 about the empty request the matrix sends is still "allowed").

``docs/access.md``'s "Roles × routes (tested)" table is generated from the same matrix
(:func:`markdown_table`) and checked here, so the document cannot drift from the behaviour.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import MASTER_KEY
from support.proxy_process import ProxyProcess, write_config

MATRIX_FILE = Path(__file__).with_name("route_matrix.json")
DOC = Path(__file__).resolve().parents[2] / "docs" / "access.md"
ROLES = ("none", "invalid key", "virtual key", "team admin (other team)", "internal user", "viewer", "admin")
#: concrete values for the path templates' placeholders
PLACEHOLDERS = {"key": "sk-not-a-real-key-000000", "id": "1", "model": "fake-chat", "asset": "swagger-ui.css",
                "subpath": "x"}
#: what each request names, so the team-admin column asks about another team
TEAM = "t-other"


def _concrete(template: str) -> str:
    return re.sub(r"\{(\w+)(?::path)?\}", lambda m: PLACEHOLDERS[m.group(1)], template)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("route_matrix")
    config = {
        "model_list": [{"model_name": "fake-chat", "litellm_params": {"model": "fake/demo"}}],
        "litellm_settings": {"public_model_groups": ["fake-chat"]},
        "general_settings": {
            "master_key": MASTER_KEY, "database_url": f"sqlite:///{directory / 'proxy.db'}", "block_robots": True,
            # the "invalid key" column sends one bad key per route from 127.0.0.1: the failed-auth
            # limit (tests/access/test_access_auth_failures.py) would answer 429 past 60 of them
            "auth_rate_limit_max_failures_per_ip": 0,
            "pass_through_endpoints": [{"path": "/partner", "target": "http://127.0.0.1:9/api", "auth": True,
                                        "methods": ["POST"]}]},
    }
    with ProxyProcess(write_config(directory, config)) as process:
        yield process


def _call(client: httpx.Client, method: str, path: str, key: str | None) -> int:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    if method == "GET":
        return client.get(path, params={"team_id": TEAM}, headers=headers).status_code
    body = {"team_id": TEAM} if path.startswith("/team/") else {}
    return client.request(method, path, json=body, headers=headers).status_code


def _callers(client: httpx.Client) -> dict[str, str | None]:
    admin = {"authorization": f"Bearer {MASTER_KEY}"}

    def ok(path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = client.post(path, json=body, headers=admin)
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    for user, role in (("u-internal", "internal_user"), ("u-viewer", "proxy_admin_viewer"),
                       ("u-team-admin", "internal_user")):
        ok("/user/new", {"user_id": user, "user_role": role})
    ok("/team/new", {"team_id": "t-mine", "members_with_roles": [{"user_id": "u-team-admin", "role": "admin"}]})
    ok("/team/new", {"team_id": TEAM})
    return {
        "none": None,
        "invalid key": "sk-this-key-does-not-exist",
        "virtual key": ok("/key/generate", {})["key"],
        "team admin (other team)": ok("/key/generate", {"user_id": "u-team-admin", "team_id": "t-mine"})["key"],
        "internal user": ok("/key/generate", {"user_id": "u-internal"})["key"],
        "viewer": ok("/key/generate", {"user_id": "u-viewer"})["key"],
        "admin": MASTER_KEY,
    }


def _observed(proxy: ProxyProcess) -> dict[str, dict[str, int]]:
    routes = httpx.get(proxy.base_url + "/routes", timeout=30).json()["routes"]
    observed: dict[str, dict[str, int]] = {}
    with httpx.Client(base_url=proxy.base_url, timeout=60) as client:
        callers = _callers(client)
        for route in routes:
            for method in route["methods"]:
                row = f"{method} {route['path']}"
                # the master key last: its calls may create things (/user/new {}) the others would see
                observed[row] = {role: _call(client, method, _concrete(route["path"]), callers[role]) for role in ROLES}
    return observed


def markdown_table(matrix: dict[str, dict[str, int]], rules: dict[str, str]) -> str:
    """The matrix as the table in docs/access.md: ✓ got through to the handler; 401; 403."""
    def cell(status: int) -> str:
        return str(status) if status in (401, 403) else "✓"

    lines = ["| route | rule | " + " | ".join(ROLES) + " |", "|---|---|" + "---|" * len(ROLES)]
    for row in sorted(matrix, key=lambda r: (r.split(" ", 1)[1], r)):
        lines.append(f"| `{row}` | {rules.get(row, '?')} | " + " | ".join(cell(matrix[row][r]) for r in ROLES) + " |")
    return "\n".join(lines)


def test_every_route_against_the_stored_matrix(proxy: ProxyProcess) -> None:
    observed = _observed(proxy)
    rules = {f"{m} {r['path']}": r["rule"] for r in httpx.get(proxy.base_url + "/routes").json()["routes"]
             for m in r["methods"]}
    if os.environ.get("UPDATE_ROUTE_MATRIX") == "1":
        MATRIX_FILE.write_text(json.dumps(observed, indent=1, sort_keys=True) + "\n")
    stored = json.loads(MATRIX_FILE.read_text())
    missing = sorted(set(observed) - set(stored))
    assert not missing, f"routes without an entry in {MATRIX_FILE.name}: {missing}"
    gone = sorted(set(stored) - set(observed))
    assert not gone, f"entries for routes the app no longer serves: {gone}"
    differing = {row: (stored[row], observed[row]) for row in stored if stored[row] != observed[row]}
    assert not differing, differing
    # every route is classified: none falls back to "unclassified"
    unclassified = [r["path"] for r in httpx.get(proxy.base_url + "/routes").json()["routes"]
                    if r["configured_by"] == "unclassified"]
    assert not unclassified
    table = markdown_table(stored, rules)
    if os.environ.get("UPDATE_ROUTE_MATRIX") == "1":
        text = DOC.read_text()
        start, end = "<!-- route-matrix:start -->", "<!-- route-matrix:end -->"
        before, found_start, rest = text.partition(start)
        _, found_end, after = rest.partition(end)
        assert found_start and found_end, "docs/access.md lacks the route-matrix markers"
        DOC.write_text(before + start + "\n" + table + "\n" + end + after)
    assert table in DOC.read_text(), "docs/access.md's roles × routes table differs from the matrix"


def test_no_route_answers_a_caller_without_a_key_except_public_ones() -> None:
    """The stored matrix itself: without a credential only public routes get through."""
    stored = json.loads(MATRIX_FILE.read_text())
    public = {row for row, cells in stored.items() if cells["none"] not in (401, 403)}
    assert public == {row for row in public if row.split(" ", 1)[1] in {
        "/health/liveliness", "/health/liveness", "/health/readiness", "/routes", "/public/model_hub", "/model_hub",
        "/robots.txt", "/swagger/{asset}"}}, public
    for row, cells in stored.items():
        assert cells["invalid key"] == cells["none"] or cells["none"] not in (401, 403), row
