"""Issue #13, requirements 2–4 across two real ``trioproxy run`` instances on one PostgreSQL and one
Redis: limits and budgets without overshoot, spend exactly once, reads current on the other instance.

The barrier is the fake upstream, as in ``tests/e2e/spend/test_spend_barrier.py``: every admitted
request is held there until each of the concurrent requests has either been answered by its
instance (refused) or reached the upstream (admitted), so all of them are decided while every
admitted one is still in flight — nothing settles early, nothing is decided late.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from support.fake_upstream import FakeUpstream
from support.shared_support import Cluster, Instance, concurrent_chats, until
from support.spend_support import estimate_usd

CONTENT = "shared-barrier-0000"


@pytest.fixture(autouse=True)
def fresh_upstream(upstream: FakeUpstream) -> None:
    upstream.reset()


def _records(instance: Instance, token: str, n: int) -> list[dict[str, Any]]:
    rows, _ = until(lambda: len(r := instance.ok(instance.get("/spend/logs", params={"api_key": token}))) >= n and r,
                    f"{n} spend records")
    return rows  # type: ignore[no-any-return]


def test_rpm_20_with_60_concurrent_requests_over_two_instances_admits_exactly_20(
        cluster: Cluster, upstream: FakeUpstream) -> None:
    a, b = cluster[0], cluster[1]
    made = a.ok(a.post("/key/generate", {"rpm_limit": 20, "key_alias": f"rpm-{uuid.uuid4().hex[:6]}"}))
    answers, admitted = concurrent_chats(cluster, upstream, made["key"], 60, CONTENT)
    assert admitted == 20
    ok = [r for r in answers if r.status_code == 200]
    refused = [r for r in answers if r.status_code != 200]
    assert len(ok) == 20 and len(refused) == 40
    assert all(r.status_code == 429 and "Limit type: requests" in r.json()["error"]["message"] for r in refused), \
        refused[0].text
    # both instances admitted some and refused some: the counter is one, not one per instance
    by_instance = [sum(1 for i, r in enumerate(answers) if i % 2 == side and r.status_code == 200) for side in (0, 1)]
    assert sum(by_instance) == 20
    # exactly one record per admitted request, whichever instance served it
    rows = _records(b, made["token"], 20)
    assert sorted(r["request_id"] for r in rows) == sorted(r.headers["x-litellm-call-id"] for r in ok)


def test_parallel_limit_3_with_12_concurrent_requests_over_two_instances(cluster: Cluster,
                                                                         upstream: FakeUpstream) -> None:
    a = cluster[0]
    made = a.ok(a.post("/key/generate", {"max_parallel_requests": 3}))
    answers, admitted = concurrent_chats(cluster, upstream, made["key"], 12, CONTENT)
    assert admitted == 3                             # held at the upstream: three slots, shared
    refused = [r for r in answers if r.status_code != 200]
    assert len(refused) == 9 and all(r.status_code == 429 for r in refused), refused[0].text
    # every slot came back: the next three run at once again, on either instance
    _, again = concurrent_chats(cluster, upstream, made["key"], 3, CONTENT)
    assert again == 3


@pytest.mark.parametrize("fits", [10])
def test_a_budget_that_fits_n_admits_at_most_n_across_instances(cluster: Cluster, upstream: FakeUpstream,
                                                                 fits: int) -> None:
    a, b = cluster[0], cluster[1]
    budget = round(fits * estimate_usd(CONTENT), 6)
    made = a.ok(a.post("/key/generate", {"max_budget": budget}))
    answers, admitted = concurrent_chats(cluster, upstream, made["key"], 40, CONTENT)
    assert admitted <= fits
    assert admitted == fits          # the budget is exactly `fits` estimates: the last one fills it
    ok = [r for r in answers if r.status_code == 200]
    assert len(ok) == admitted
    assert all(r.status_code == 429 and r.json()["error"]["type"] == "budget_exceeded"
               for r in answers if r.status_code != 200)
    # spend exactly once: one record per admitted request; the key's spend on the *other* instance is their sum
    rows = _records(b, made["token"], admitted)
    assert sorted(r["request_id"] for r in rows) == sorted(r.headers["x-litellm-call-id"] for r in ok)
    spent = sum(r["spend"] for r in rows)
    info, _ = until(lambda: (i := b.ok(b.get("/key/info", params={"key": made["token"]}))["info"])
                    and abs(i["spend"] - spent) < 1e-9 and i, "the key's aggregate spend on B")
    assert info["spend"] == pytest.approx(spent)


def test_spend_and_key_info_read_on_the_other_instance(cluster: Cluster, upstream: FakeUpstream) -> None:
    """Requirement 4: what a request on A changed is read on B (measured: A's answer → B's read)."""
    a, b = cluster[0], cluster[1]
    made = a.ok(a.post("/key/generate", {"max_budget": 1.0}))
    answer = a.chat(made["key"])
    assert answer.status_code == 200
    cost = float(answer.headers["x-litellm-response-cost"])
    assert cost > 0
    info, seconds = until(lambda: (i := b.ok(b.get("/key/info", params={"key": made["token"]}))["info"])
                          and i["spend"] == pytest.approx(cost) and i, "A's spend read on B")
    rows, _ = until(lambda: b.ok(b.get("/spend/logs", params={"api_key": made["token"]})), "A's record read on B")
    assert [r["request_id"] for r in rows] == [answer.headers["x-litellm-call-id"]]
    print(f"\nspend of a request on A read on B after {seconds * 1000:.0f} ms")
