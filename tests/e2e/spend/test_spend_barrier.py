"""The admission rule end to end: fifty concurrent requests against a budget that fits ten admit at
most eleven — for a key, a team, an internal user and a brand-new customer — through a real
``trioproxy run`` on SQLite and on PostgreSQL.

The barrier is the fake upstream: every admitted request is held there (``Behavior.hold``) until
all fifty have been answered by the proxy or have reached the upstream, so none settles before the
last one is decided: fifty requests truly in flight at once. The budget fits ten and a half
estimates (conftest ``BARRIER_BUDGET``): ten are admitted with room left, the eleventh crosses the
line and is served (LiteLLM's rule), the other thirty-nine are refused with ``budget_exceeded``.
Afterwards every admitted request has exactly one spend record and the aggregate equals their sum.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from support.fake_upstream import Behavior, FakeUpstream
from support.keys_support import Api
from support.spend_support import MAX_TOKENS, rows_of, wait_for

from .conftest import BARRIER_BUDGET, BARRIER_CONTENT

REQUESTS = 50


def _barrier(api: Api, upstream: FakeUpstream, key: str, **body: Any) -> tuple[list[httpx.Response], int]:
    """Fifty concurrent requests; returns the answers and how many reached the upstream while all
    fifty were in flight."""
    hold = threading.Event()
    upstream.set_behavior("up-model", Behavior(hold=hold))
    client = httpx.Client(base_url=api.proxy.base_url, timeout=60,
                          limits=httpx.Limits(max_connections=REQUESTS, max_keepalive_connections=REQUESTS))
    payload = {"model": "gpt-test", "messages": [{"role": "user", "content": BARRIER_CONTENT}],
               "max_tokens": MAX_TOKENS, **body}
    try:
        with ThreadPoolExecutor(REQUESTS) as pool:
            futures = [pool.submit(client.post, "/v1/chat/completions", json=payload,
                                   headers={"authorization": f"Bearer {key}"}) for _ in range(REQUESTS)]
            # the barrier: each request is either answered (refused) or held at the upstream
            wait_for(lambda: sum(f.done() for f in futures) + len(upstream.requests) == REQUESTS,
                     what="all fifty requests decided")
            admitted = len(upstream.requests)
            hold.set()
            answers = [f.result() for f in futures]
    finally:
        hold.set()
        client.close()
    return answers, admitted


def _check(api: Api, answers: list[httpx.Response], admitted: int, message: str, *, api_key: str) -> None:
    assert admitted == 11, admitted                       # at most eleven: ten fit, the eleventh crosses
    ok = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code != 200]
    assert len(ok) == 11 and len(refused) == REQUESTS - 11
    for answer in refused:
        assert answer.status_code == 429, answer.text
        error = answer.json()["error"]
        assert error["type"] == "budget_exceeded" and error["code"] == "429"
        # "Current cost" is spend + reservations in flight: the eleven estimates
        assert message in error["message"] and error["message"].endswith(f"{BARRIER_BUDGET}")
    # one record per admitted request, keyed by the id its client received
    ids = sorted(a.json()["id"] for a in ok)
    assert ids == sorted(a.headers["x-litellm-call-id"] for a in ok)
    rows = wait_for(lambda: (found := rows_of(api, api_key=api_key)) and len(found) >= 11 and found,
                    what="the eleven spend records")
    assert sorted(r["request_id"] for r in rows) == ids
    assert all(r["status"] == "success" and r["spend"] > 0 for r in rows)


@pytest.mark.parametrize("subject", ["key", "team", "user"])
def test_fifty_concurrent_requests_against_a_budget_that_fits_ten(api: Api, upstream: FakeUpstream,
                                                                  subject: str) -> None:
    tag = uuid.uuid4().hex[:8]
    if subject == "key":
        made = api.new_key(max_budget=BARRIER_BUDGET, key_alias=f"barrier-{tag}")
        message = f"Budget has been exceeded! Key=barrier-{tag} ("
    elif subject == "team":
        team = api.ok(api.post("/team/new", {"team_id": f"team-{tag}", "max_budget": BARRIER_BUDGET}))
        made = api.new_key(team_id=team["team_id"])
        message = f"Budget has been exceeded! Team=team-{tag} Current cost: "
    else:
        api.ok(api.post("/user/new", {"user_id": f"user-{tag}", "max_budget": BARRIER_BUDGET}))
        made = api.new_key(user_id=f"user-{tag}")
        message = f"ExceededBudget: User=user-{tag} over budget. Spend="
    answers, admitted = _barrier(api, upstream, made["key"])
    _check(api, answers, admitted, message, api_key=made["token"])
    if subject == "key":      # the aggregate equals the sum of the records, exactly once
        spent = sum(r["spend"] for r in rows_of(api, api_key=made["token"]))
        info = wait_for(lambda: (i := api.ok(api.get("/key/info", {"key": made["token"]}))["info"])
                        and abs(i["spend"] - spent) < 1e-9 and i, what="the key's spend")
        assert info["spend"] == pytest.approx(spent)


def test_fifty_concurrent_requests_of_a_brand_new_customer(api: Api, upstream: FakeUpstream) -> None:
    """A customer nobody created: ``litellm_settings.max_end_user_budget`` is its budget."""
    customer = f"new-customer-{uuid.uuid4().hex[:8]}"
    made = api.new_key()
    answers, admitted = _barrier(api, upstream, made["key"], user=customer)
    _check(api, answers, admitted, f"ExceededBudget: End User={customer} over budget. Spend=", api_key=made["token"])
    rows = rows_of(api, api_key=made["token"])
    assert {r["end_user"] for r in rows} == {customer}
