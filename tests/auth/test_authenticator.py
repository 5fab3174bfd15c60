"""The one ``Authenticator`` with virtual keys, and the key rules, in process.

The same behaviours run end to end in ``tests/e2e/keys/``; here each rule is pinned down alone:
the order of the credential checks, a hash never looked up, a store that cannot answer being a 503
(never a 401) while cached keys keep working, and the model / enforced-params / guardrail rules.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from trioproxy.admin import Caller
from trioproxy.auth import (
    Authenticator,
    Identity,
    KeyModelAccessDenied,
    TeamModelAccessDenied,
    apply_key_rules,
    hash_key,
    is_key_hash,
    may_use_model,
    model_allowed,
)
from trioproxy.errors import AuthenticationError, BadRequestError, InternalServerError, ProxyError
from trioproxy.hooks.base import requested_guardrails
from trioproxy.store import Actor, Store, StoreUnavailable, StoreUnavailableError, open_store

MASTER = "sk-master-unit-0123456789"
CLEAR = "sk-unit-virtual-key-0123456789abcdefghij"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(f"sqlite:///{tmp_path / 'unit.db'}") as st:
        await st.keys.create({"token": hash_key(CLEAR), "key_name": "sk-...ghij", "models": ["m1"]}, Actor("t"))
        yield st


class Counting:
    """A stand-in for the key cache that counts lookups."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def authenticate(self, api_key: str) -> Any:
        self.calls.append(api_key)
        raise AuthenticationError("unknown")


def headers(key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"} if key else {}


async def test_the_order_of_the_checks() -> None:
    keys = Counting()
    auth = Authenticator(MASTER, keys)
    with pytest.raises(AuthenticationError, match="No API key provided"):
        await auth.identify({})
    master = await auth.identify(headers(MASTER))
    assert master.kind == "master_key" and master.is_admin and master.user_id == "admin" and master.record is None
    assert master.token == hash_key(MASTER)
    for not_a_credential in (hash_key(CLEAR), "0" * 64):
        with pytest.raises(AuthenticationError):
            await auth.identify(headers(not_a_credential))
    assert keys.calls == []                                   # a hash is never looked up
    with pytest.raises(AuthenticationError):
        await auth.identify(headers("sk-unknown-0000"))
    assert keys.calls == ["sk-unknown-0000"]
    # an open proxy (no master key) looks nothing up: everyone is an anonymous admin
    opened = Authenticator(None, keys)
    anonymous = await opened.identify(headers("sk-whatever"))
    assert anonymous.kind == "open" and anonymous.is_admin and keys.calls == ["sk-unknown-0000"]
    # without a database, only the master key
    with pytest.raises(AuthenticationError, match="Invalid API key"):
        await Authenticator(MASTER).identify(headers(CLEAR))


def test_is_key_hash() -> None:
    assert is_key_hash("a" * 64) and not is_key_hash("A" * 64) and not is_key_hash("a" * 63)
    assert not is_key_hash("sk-" + "a" * 61)


async def test_a_virtual_key_and_what_hooks_get(store: Store) -> None:
    auth = Authenticator(MASTER, store.key_cache)
    who = await auth.identify(headers(CLEAR))
    assert who.kind == "virtual_key" and who.token == hash_key(CLEAR) and not who.is_admin
    user = who.user_api_key_auth()
    assert user.api_key == hash_key(CLEAR) and user.models == ["m1"]
    user.models.append("x")
    assert (await auth.authenticate(headers(CLEAR))).models == ["m1"]


class Failing:
    dialect = "sqlite"

    async def read(self, fn: Any) -> Any:
        raise StoreUnavailable("database sqlite:///secret/path unavailable: disk I/O error")


async def test_a_store_that_cannot_answer_is_a_503_and_cached_keys_keep_working(store: Store) -> None:
    other = "sk-unit-other-key-0123456789abcdefghijk"
    await store.keys.create({"token": hash_key(other), "key_name": "sk-...hijk"}, Actor("t"))
    auth = Authenticator(MASTER, store.key_cache)
    await auth.identify(headers(CLEAR))                       # cached
    store.key_cache._db = Failing()  # type: ignore[assignment]
    store.customer_cache._db = Failing()  # type: ignore[assignment]
    assert (await auth.identify(headers(CLEAR))).token == hash_key(CLEAR)
    for lookup in (auth.identify(headers(other)), store.customer_cache.find("someone")):
        with pytest.raises(StoreUnavailableError) as caught:
            await lookup
        err = caught.value
        assert err.status_code == 503 and err.code == "store_unavailable" and not isinstance(err, AuthenticationError)
        assert "secret/path" not in err.message and err.headers == {"retry-after": "1"}
    # a value no customer row can have is not looked up at all
    assert await store.customer_cache.find("x" * 256) is None
    assert await store.customer_cache.find("nul\x00") is None


def test_the_master_key_leaves_no_hash_in_the_audit_log() -> None:
    caller = Caller.for_identity(Identity.master(hash_key(MASTER), "sk-...6789"), changed_by=None)
    assert caller.is_admin and caller.actor().api_key == "" and caller.actor().changed_by == "admin"


# -- key rules -------------------------------------------------------------------------------------

def record(models: tuple[str, ...] = (), team: Any = None, user: Any = None, **extra: Any) -> Any:
    base = {"models": models, "team": team, "user": user, "enforced_params": (), "guardrails": ()}
    return SimpleNamespace(**{**base, **extra})


def test_model_allowed() -> None:
    assert model_allowed((), "anything")
    assert model_allowed(("gpt-4o",), "gpt-4o") and not model_allowed(("gpt-4o",), "gpt-4o-mini")
    assert model_allowed(("*",), "x") and model_allowed(("all-proxy-models",), "x")
    assert model_allowed(("openai/*",), "openai/gpt-4o") and not model_allowed(("openai/*",), "azure/gpt-4o")


def test_model_rules_of_key_team_and_user() -> None:
    team = SimpleNamespace(team_id="t", models=("a",), guardrails=())
    with pytest.raises(KeyModelAccessDenied):
        apply_key_rules(record(("a",)), {"model": "b"}, ())
    with pytest.raises(TeamModelAccessDenied, match="Team=t"):
        apply_key_rules(record(("a", "b"), team=team), {"model": "b"}, ())
    apply_key_rules(record((), team=team), {"model": "a"}, ())
    user = SimpleNamespace(user_id="u", models=("a",))
    with pytest.raises(KeyModelAccessDenied, match="User=u"):
        apply_key_rules(record((), user=user), {"model": "b"}, ())
    assert may_use_model(record((), team=team), "a") and not may_use_model(record((), team=team), "b")
    apply_key_rules(record(("a",)), {"messages": []}, ())      # no model: the body check answers later


def test_enforced_params_of_a_key() -> None:
    rules = record(enforced_params=("user", "metadata.tag"))
    with pytest.raises(BadRequestError) as caught:
        apply_key_rules(rules, {"user": "u", "metadata": {"tag": None}}, ())
    assert caught.value.param == "metadata.tag" and "the key's enforced_params" in caught.value.message
    apply_key_rules(rules, {"user": "u", "metadata": {"tag": "x"}}, ())


def test_a_keys_guardrails_join_the_requests_selection() -> None:
    team = SimpleNamespace(team_id="t", models=(), guardrails=("g2", "g1"))
    rules = record(guardrails=("g1",), team=team)
    data: dict[str, Any] = {}
    apply_key_rules(rules, data, {"g1", "g2", "g3"})
    assert data["guardrails"] == ["g1", "g2"]
    chosen: dict[str, Any] = {"guardrails": [{"g1": {"extra_body": {"x": 1}}}, "g3"]}
    apply_key_rules(rules, chosen, {"g1", "g2", "g3"})
    assert chosen["guardrails"] == [{"g1": {"extra_body": {"x": 1}}}, "g3", "g2"]
    # the mapping forms (issue #15) cannot keep a key's guardrails out either
    mapping: dict[str, Any] = {"guardrails": {"g3": {"extra_body": {}}, "g1": False}}
    apply_key_rules(rules, mapping, ("g1", "g2", "g3"))
    assert mapping["guardrails"] == [{"g3": {"extra_body": {}}}, {"g1": {}}, "g2"]   # false cannot turn g1 off
    assert set(requested_guardrails(mapping)) == {"g1", "g2", "g3"}
    in_metadata: dict[str, Any] = {"metadata": {"guardrails": ["g3"]}}
    apply_key_rules(rules, in_metadata, {"g1", "g2", "g3"})
    assert in_metadata["guardrails"] == ["g3", "g1", "g2"]
    wrong_shape: dict[str, Any] = {"guardrails": "g3"}
    apply_key_rules(rules, wrong_shape, {"g1", "g2", "g3"})
    assert wrong_shape["guardrails"] == "g3"                  # left for the shape check's 400
    with pytest.raises(InternalServerError) as caught:
        apply_key_rules(rules, {}, {"g1"})
    assert caught.value.code == "key_guardrail_not_configured"
    assert isinstance(caught.value, ProxyError)
