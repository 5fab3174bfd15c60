"""Virtual keys end to end: a real ``trioproxy run`` on a real database, and a client for its API.

Every test module of ``tests/e2e/test_keys_*.py`` runs twice: on a SQLite file and on the real
PostgreSQL server ``./scripts/test`` starts (``pg_dsn``), each module with a database of its own,
created empty — the schema comes from ``trioproxy run``'s startup migrations.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from support.fake_services import FakeService, Reply, Seen
from support.fake_upstream import FakeUpstream
from support.proxy_process import ProxyProcess, write_config

__all__ = [
    "GUARDRAILS_FILE",
    "MASTER",
    "REFLECT_FILE",
    "Api",
    "Database",
    "FakeGuard",
    "keys_config",
    "make_database",
]

MASTER = "sk-master-KEYS-e2e-0123456789abcdef"
UPSTREAM_KEY = "sk-upstream-KEYS-e2e-0123456789abcd"

#: a handler that shows the hooks' ``user_api_key_dict`` in a response header (JSON)
REFLECT_FILE = '''
import json
from trioproxy import CustomLogger

FIELDS = ("api_key", "key_alias", "key_name", "user_id", "team_id", "team_alias", "user_role", "models",
          "metadata", "team_metadata", "permissions", "tpm_limit", "rpm_limit", "max_parallel_requests",
          "max_budget", "spend", "team_models", "team_max_budget", "user_email", "expires")


class Reflect(CustomLogger):
    async def async_post_call_response_headers_hook(self, data, user_api_key_dict, response, request_headers):
        shown = json.dumps({name: getattr(user_api_key_dict, name) for name in FIELDS}, sort_keys=True,
                           ensure_ascii=True)
        # a hook changing what it got must not change the cached key
        user_api_key_dict.models.append("changed-by-a-hook")
        user_api_key_dict.metadata["changed"] = True
        return {"x-auth": shown}


reflect = Reflect()
'''

#: a custom guardrail that refuses a word; runs only when named (by the request, or by the key)
GUARDRAILS_FILE = '''
import json
from trioproxy import CustomGuardrail


class RefuseWord(CustomGuardrail):
    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        if "forbidden-word" in json.dumps(data.get("messages")):
            raise ValueError("key-guard refused the forbidden word")
        return None
'''


class FakeGuard(FakeService):
    """A loopback LLM Guard API: a prompt with "ignore previous instructions" is invalid."""

    def handle(self, seen: Seen) -> Reply:
        prompt = seen.json().get("prompt", "")
        valid = "ignore previous instructions" not in prompt.lower()
        return Reply(200, {"is_valid": valid, "sanitized_prompt": prompt, "scanners": {}})


@dataclass
class Database:
    """One database for a test module: its URL, and how to read everything it holds."""

    kind: str
    url: str
    path: Path | None = None         # SQLite: the file
    dsn: str | None = None           # PostgreSQL: a libpq DSN of this database
    _admin_dsn: str | None = field(default=None, repr=False)
    _name: str | None = None

    def everything(self) -> bytes:
        """Every byte the database holds: the SQLite file with its WAL, or every row of every
        PostgreSQL table as text."""
        if self.kind == "sqlite":
            assert self.path is not None
            out = b""
            for suffix in ("", "-wal", "-shm"):
                part = Path(str(self.path) + suffix)
                if part.exists():
                    out += part.read_bytes()
            return out
        assert self.dsn is not None
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")]
            rows = [str(r[0]) for t in tables for r in conn.execute(f'SELECT t::text FROM "{t}" t')]
        return "\n".join(rows).encode()

    def drop(self) -> None:
        if self.kind == "postgresql" and self._admin_dsn is not None:
            with psycopg.connect(self._admin_dsn, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {self._name} WITH (FORCE)")


def make_database(kind: str, directory: Path, pg_dsn: str | None) -> Database:
    """An empty database (no schema) of ``kind``."""
    if kind == "sqlite":
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "proxy.db"
        return Database("sqlite", f"sqlite:///{path}", path=path)
    assert pg_dsn is not None
    name = f"keys_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    base = pg_dsn.rpartition("/")[0]
    return Database("postgresql", f"{base}/{name}", dsn=f"{base}/{name}", _admin_dsn=pg_dsn, _name=name)


def keys_config(upstream: FakeUpstream, database_url: str | None, **general: Any) -> dict[str, Any]:
    """A config with the store on, audit on, the built-ins per-key permissions switch, a guardrail
    keys can require, and a handler that reflects the hooks' caller."""
    settings = dict(general)
    litellm = settings.pop("litellm_settings", {})
    return {
        "model_list": [
            {"model_name": "gpt-test", "litellm_params": {"model": "openai/up-model", "api_base": upstream.base_url,
                                                          "api_key": UPSTREAM_KEY}},
            {"model_name": "gpt-other", "litellm_params": {"model": "openai/up-other", "api_base": upstream.base_url,
                                                           "api_key": UPSTREAM_KEY}},
            {"model_name": "text-embedding-3-small", "litellm_params": {"model": "fake/text-embedding-3-small"}},
        ],
        "litellm_settings": {
            "num_retries": 0,
            "store_audit_logs": True,
            "callbacks": ["hide_secrets", "llmguard_moderations", "blocked_user_check", "reflect.reflect"],
            "llm_guard_mode": "key-specific",
            "blocked_user_list": ["config-blocked"],
            **litellm,
        },
        "guardrails": [{"guardrail_name": "key-guard",
                        "litellm_params": {"guardrail": "guards.RefuseWord", "mode": "pre_call"}}],
        "general_settings": {"master_key": MASTER, **({"database_url": database_url} if database_url else {}),
                             **settings},
    }


def start_keys_proxy(directory: Path, config: dict[str, Any], guard: FakeGuard) -> ProxyProcess:
    path = write_config(directory, config, files={"reflect.py": REFLECT_FILE, "guards.py": GUARDRAILS_FILE})
    return ProxyProcess(path, env={"LLM_GUARD_API_BASE": guard.url + "/"})


class Api:
    """The proxy's HTTP API, with the master key unless another ``key`` is given."""

    def __init__(self, proxy: ProxyProcess) -> None:
        self.proxy = proxy
        self.client = httpx.Client(base_url=proxy.base_url, timeout=30)
        #: every answer body seen (the clear-key test reads them)
        self.answers: list[str] = []
        self._lock = threading.Lock()

    def _auth(self, key: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {key or MASTER}"}

    def _keep(self, response: httpx.Response) -> httpx.Response:
        with self._lock:
            self.answers.append(response.text)
        return response

    def post(self, path: str, body: Any = None, *, key: str | None = None, **kw: Any) -> httpx.Response:
        headers = {**self._auth(key), **kw.pop("headers", {})}
        if isinstance(body, bytes | str):
            return self._keep(self.client.post(path, content=body, headers=headers, **kw))
        return self._keep(self.client.post(path, json=body if body is not None else {}, headers=headers, **kw))

    def get(self, path: str, params: dict[str, Any] | None = None, *, key: str | None = None) -> httpx.Response:
        return self._keep(self.client.get(path, params=params, headers=self._auth(key)))

    def ok(self, response: httpx.Response) -> Any:
        assert response.status_code == 200, (response.status_code, response.text)
        return response.json()

    def new_key(self, **fields: Any) -> dict[str, Any]:
        return self.ok(self.post("/key/generate", fields))

    def chat(self, key: str, model: str = "gpt-test", content: str = "hi", **body: Any) -> httpx.Response:
        return self._keep(self.client.post("/v1/chat/completions", headers=self._auth(key), json={
            "model": model, "messages": [{"role": "user", "content": content}], **body}))

    def auth_seen(self, response: httpx.Response) -> dict[str, Any]:
        """What the hooks received as ``user_api_key_dict`` (the reflect handler's header)."""
        return json.loads(response.headers["x-auth"])  # type: ignore[no-any-return]

    def close(self) -> None:
        self.client.close()


def error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert "error" in body, body
    return body["error"]  # type: ignore[no-any-return]


def iter_answers(api: Api) -> Iterator[str]:
    with api._lock:
        yield from list(api.answers)
