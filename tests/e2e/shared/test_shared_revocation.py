"""Issue #13, requirement 1: a change made on one instance is enforced by the other through Redis
pub/sub — keys deleted, blocked, rotated or changed, teams deleted or blocked, customers blocked, a
key created after the other instance had refused it.

Two real ``trioproxy run`` processes on one PostgreSQL and one Redis. ``user_api_key_cache_ttl`` is
600 s, so only the invalidation can explain instance B seeing the change. Each test measures the
time from instance A's answer to B's first answer that reflects it (printed at the end of the module
with ``-s``); the tests assert the mechanism, and fail only after a 15 s hang guard.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from support.shared_support import Cluster, Instance, until

#: propagation times seen in this module (seconds), by change
PROPAGATION: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    if PROPAGATION:
        lines = [f"  {name}: {seconds * 1000:.1f} ms" for name, seconds in sorted(PROPAGATION.items())]
        print("\nrevocation propagation A → B (A's answer to B's first answer that reflects it):\n" + "\n".join(lines))


def _new_key(instance: Instance, **fields: object) -> str:
    return instance.ok(instance.post("/key/generate", fields))["key"]  # type: ignore[no-any-return]


def _refused_on(b: Instance, key: str, name: str) -> None:
    response, seconds = until(lambda: (r := b.models(key)).status_code != 200 and r, f"B refusing after {name}")
    assert response.status_code == 401, response.text
    PROPAGATION[name] = seconds


def _warm(b: Instance, key: str) -> None:
    """B authenticates the key (now it is in B's cache)."""
    assert b.models(key).status_code == 200
    assert b.chat(key).status_code == 200


def test_key_delete(cluster: Cluster) -> None:
    a, b = cluster[0], cluster[1]
    key = _new_key(a)
    _warm(b, key)
    a.ok(a.post("/key/delete", {"keys": [key]}))
    _refused_on(b, key, "key deleted")


def test_key_block_and_unblock(cluster: Cluster) -> None:
    a, b = cluster[0], cluster[1]
    key = _new_key(a)
    _warm(b, key)
    a.ok(a.post("/key/block", {"key": key}))
    _refused_on(b, key, "key blocked")
    assert "blocked" in b.chat(key).json()["error"]["message"]
    a.ok(a.post("/key/unblock", {"key": key}))
    _, PROPAGATION["key unblocked"] = until(lambda: b.models(key).status_code == 200, "B accepting after unblock")


def test_key_rotated_without_grace(cluster: Cluster) -> None:
    a, b = cluster[0], cluster[1]
    key = _new_key(a)
    _warm(b, key)
    new = a.ok(a.post("/key/regenerate", {"key": key}))["key"]
    _refused_on(b, key, "key rotated")
    assert b.chat(new).status_code == 200


def test_key_models_changed(cluster: Cluster) -> None:
    a, b = cluster[0], cluster[1]
    key = _new_key(a, models=["gpt-test", "gpt-other"])
    _warm(b, key)
    assert b.chat(key, model="gpt-other").status_code == 200
    a.ok(a.post("/key/update", {"key": key, "models": ["gpt-test"]}))
    listed, PROPAGATION["key models changed"] = until(
        lambda: [m["id"] for m in b.models(key).json()["data"]] == ["gpt-test"], "B listing the new models")
    assert listed
    refused = b.chat(key, model="gpt-other")
    assert refused.status_code == 403, refused.text


def test_key_limits_changed(cluster: Cluster) -> None:
    a, b = cluster[0], cluster[1]
    key = _new_key(a, metadata={"v": 1})
    _warm(b, key)
    a.ok(a.post("/key/update", {"key": key, "max_budget": 0}))
    response, PROPAGATION["key budget set to 0"] = until(
        lambda: (r := b.chat(key)).status_code != 200 and r, "B refusing over the new budget")
    assert response.status_code in (400, 429), response.text


def test_team_blocked_and_deleted(cluster: Cluster) -> None:
    a, b = cluster[0], cluster[1]
    team = f"team-{uuid.uuid4().hex[:8]}"
    a.ok(a.post("/team/new", {"team_id": team}))
    key = _new_key(a, team_id=team)
    _warm(b, key)
    a.ok(a.post("/team/block", {"team_id": team}))
    _refused_on(b, key, "team blocked")
    a.ok(a.post("/team/unblock", {"team_id": team}))
    until(lambda: b.models(key).status_code == 200, "B accepting after the team's unblock")
    a.ok(a.post("/team/delete", {"team_ids": [team]}))
    _refused_on(b, key, "team deleted")


def test_customer_blocked(cluster: Cluster) -> None:
    a, b = cluster[0], cluster[1]
    key = _new_key(a)
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    assert b.chat(key, user=customer).status_code == 200          # B remembers "no such customer"
    a.ok(a.post("/customer/block", {"user_ids": [customer]}))
    response, PROPAGATION["customer blocked"] = until(
        lambda: (r := b.chat(key, user=customer)).status_code != 200 and r, "B refusing the blocked customer")
    assert response.status_code == a.chat(key, user=customer).status_code == 403, response.text


def test_a_key_created_after_the_other_instance_refused_it(cluster: Cluster) -> None:
    a, b = cluster[0], cluster[1]
    own = f"sk-byo-{uuid.uuid4().hex}"
    assert b.models(own).status_code == 401                       # B remembers "no such key"
    a.ok(a.post("/key/generate", {"key": own}))
    _, PROPAGATION["key created (B had refused it)"] = until(lambda: b.models(own).status_code == 200,
                                                             "B accepting the new key")
