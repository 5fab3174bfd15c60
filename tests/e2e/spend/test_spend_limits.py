"""Rate limits, parallel slots, budget windows, headers and records, through a real ``trioproxy run``
on SQLite and on PostgreSQL.

* A parallel slot comes back after an upstream 500 and after the client disconnects (the run's
  shielded ``finally``): the next request is admitted.
* A request refused for parallelism consumes no rpm.
* ``budget_duration``: a refused key is admitted again once its window rolled (the store's roll is
  the event waited for, not a clock).
* Every proxied answer carries ``x-litellm-call-id`` (the body's ``id``), ``x-litellm-response-cost``
  (non-streaming), the key's spend and budget, and the rate-limit remaining/limit headers.
* Spend records: visible through ``/spend/logs`` (waited for: within the flush interval), the cost
  of a stream from its final usage chunk, tags and ``spend_logs_metadata`` from the headers, the
  caller's address; failures cost 0 and carry their status.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import httpx
import orjson
import pytest

from support.fake_upstream import Behavior, FakeUpstream
from support.keys_support import Api, error
from support.spend_support import (
    INPUT_PRICE,
    MAX_TOKENS,
    OUTPUT_PRICE,
    raw_request,
    rows_of,
    wait_for,
)


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_a_parallel_slot_is_released_after_an_upstream_500(api: Api, upstream: FakeUpstream) -> None:
    made = api.new_key(max_parallel_requests=1)
    upstream.set_behavior("up-model", Behavior(status=500, error_message="boom"))
    failed = api.chat(made["key"])
    assert failed.status_code == 500
    upstream.set_behavior("up-model", Behavior())
    assert api.chat(made["key"]).status_code == 200        # the slot came back
    rows = wait_for(lambda: len(found := rows_of(api, api_key=made["token"])) == 2 and found, what="two records")
    failure = next(r for r in rows if r["request_id"] == failed.headers["x-litellm-call-id"])
    assert failure["status"] == "failure" and failure["spend"] == 0 and failure["total_tokens"] == 0
    assert failure["metadata"]["error_information"]["error_code"] == "500"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_a_parallel_slot_is_released_after_the_client_disconnects(api: Api, upstream: FakeUpstream,
                                                                  stream: bool) -> None:
    made = api.new_key(max_parallel_requests=1)
    hold = threading.Event()
    upstream.set_behavior("up-model", Behavior(hold=hold))
    try:
        sock = raw_request(api.proxy.base_url, made["key"], {"model": "gpt-test", "stream": stream,
                                                              "messages": [{"role": "user", "content": "hi"}]})
        upstream.wait_for_requests(1)
        busy = api.chat(made["key"])                       # the one slot is taken
        assert busy.status_code == 429 and "max_parallel_requests" in error(busy)["message"]
        sock.close()                                       # the client leaves
        upstream.wait_for_disconnect()                     # the proxy abandoned the upstream
    finally:
        hold.set()
    # the record of the abandoned request is handed off in the same step as the slot is released
    rows = wait_for(lambda: rows_of(api, api_key=made["token"]), what="the abandoned request's record")
    assert [(r["status"], r["spend"], r["metadata"]["error_information"]["error_code"]) for r in rows] == \
        [("failure", 0, "499")]
    upstream.set_behavior("up-model", Behavior())
    assert api.chat(made["key"]).status_code == 200


def test_requests_refused_for_parallelism_do_not_consume_rpm(api: Api, upstream: FakeUpstream) -> None:
    made = api.new_key(rpm_limit=3, max_parallel_requests=1)
    hold = threading.Event()
    upstream.set_behavior("up-model", Behavior(hold=hold))
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(api.chat, made["key"])
        upstream.wait_for_requests(1)
        refused = [api.chat(made["key"]) for _ in range(3)]     # parallel refusals: no rpm spent
        hold.set()
        assert first.result().status_code == 200
    assert all(r.status_code == 429 and "Limit type: max_parallel_requests" in error(r)["message"] for r in refused)
    assert refused[0].headers["retry-after"] == "1"
    assert first.result().headers["x-ratelimit-api_key-remaining-requests"] == "2"
    second, third = api.chat(made["key"]), api.chat(made["key"])
    assert [second.status_code, third.status_code] == [200, 200]
    assert [second.headers["x-ratelimit-api_key-remaining-requests"],
            third.headers["x-ratelimit-api_key-remaining-requests"]] == ["1", "0"]
    over = api.chat(made["key"])
    assert over.status_code == 429
    message = error(over)["message"]
    assert message.startswith(f"Rate limit exceeded for api_key: {made['token']}. Limit type: requests. "
                              "Current limit: 3, Remaining: 0. Limit resets at: ")
    assert 0 < int(over.headers["retry-after"]) <= 60


def test_the_master_key_is_never_limited(api: Api) -> None:
    for _ in range(3):
        answer = api.chat(None)      # type: ignore[arg-type]  (the master key)
        assert answer.status_code == 200
        assert "x-litellm-key-spend" not in answer.headers and answer.headers["x-litellm-call-id"]


def test_headers_and_the_record_of_a_plain_answer(api: Api, upstream: FakeUpstream) -> None:
    made = api.new_key(max_budget=5, rpm_limit=100, tpm_limit=100_000, key_alias=uid("headers"),
                       metadata={"tags": ["key-tag"], "spend_logs_metadata": {"owner": "key", "who": "key"}})
    first = api.post("/v1/chat/completions", {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}],
                                              "metadata": {"tags": ["body-tag"]}},
                     key=made["key"], headers={"x-litellm-tags": "hdr-a, hdr-b",
                                               "x-litellm-spend-logs-metadata": '{"who": "header", "ticket": 7}'})
    assert first.status_code == 200
    body = first.json()
    h = first.headers
    assert body["id"] == h["x-litellm-call-id"] == h["x-trioproxy-request-id"]
    usage = body["usage"]
    cost = usage["prompt_tokens"] * INPUT_PRICE + usage["completion_tokens"] * OUTPUT_PRICE
    assert float(h["x-litellm-response-cost"]) == pytest.approx(cost) == float(h["x-trioproxy-response-cost"])
    assert (h["x-litellm-key-spend"], h["x-litellm-key-max-budget"]) == ("0.0", "5.0")
    assert (h["x-litellm-key-rpm-limit"], h["x-litellm-key-tpm-limit"]) == ("100", "100000")
    assert (h["x-ratelimit-api_key-limit-requests"], h["x-ratelimit-api_key-remaining-requests"]) == ("100", "99")
    assert h["x-ratelimit-api_key-limit-tokens"] == "100000"
    second = api.chat(made["key"])
    assert float(second.headers["x-litellm-key-spend"]) == pytest.approx(cost)   # spend before this request
    (row,) = wait_for(lambda: rows_of(api, request_id=body["id"]), what="the record")
    assert row["status"] == "success" and row["spend"] == pytest.approx(cost)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert row["api_key"] == made["token"] and row["model_group"] == "gpt-test" and row["model"] == "up-model"
    assert row["request_tags"] == ["body-tag", "hdr-a", "hdr-b", "key-tag"]
    assert row["metadata"]["spend_logs_metadata"] == {"owner": "key", "who": "header", "ticket": 7}
    assert row["requester_ip_address"] == "127.0.0.1" and row["call_type"] == "acompletion"
    assert row["metadata"]["user_api_key_alias"] == made["key_alias"]
    assert row["api_base"] == upstream.base_url


def test_a_streams_cost_comes_from_its_final_usage_chunk(api: Api, upstream: FakeUpstream) -> None:
    made = api.new_key(max_budget=5)
    upstream.set_behavior("up-model", Behavior(content="one two three four five six", chunks=3))
    with httpx.stream("POST", f"{api.proxy.url}/chat/completions", timeout=30,
                      headers={"authorization": f"Bearer {made['key']}"},
                      json={"model": "gpt-test", "stream": True, "stream_options": {"include_usage": True},
                            "messages": [{"role": "user", "content": "count to six"}]}) as response:
        assert response.status_code == 200
        call_id = response.headers["x-litellm-call-id"]
        assert "x-litellm-response-cost" not in response.headers   # not known when the headers are sent
        assert response.headers["x-litellm-key-max-budget"] == "5.0"
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert {c["id"] for c in chunks} == {call_id}                   # every chunk carries the request's id
    usage = chunks[-1]["usage"]
    (row,) = wait_for(lambda: rows_of(api, request_id=call_id), what="the stream's record")
    assert row["spend"] == pytest.approx(usage["prompt_tokens"] * INPUT_PRICE + usage["completion_tokens"] * OUTPUT_PRICE)
    assert row["completion_tokens"] == usage["completion_tokens"] == 6
    assert row["completionStartTime"] is not None and row["status"] == "success"


def test_a_budget_window_reopens_when_it_rolls(api: Api, upstream: FakeUpstream) -> None:
    made = api.new_key(max_budget=0.00001, budget_duration="2s")    # the first answer spends it all
    first = api.chat(made["key"], max_tokens=MAX_TOKENS)
    assert first.status_code == 200
    refused = api.chat(made["key"])
    assert refused.status_code == 429 and error(refused)["type"] == "budget_exceeded"
    assert 1 <= int(refused.headers["retry-after"]) <= 2
    window_end = datetime.fromisoformat(made["budget_reset_at"])

    def rolled() -> bool:   # the event: the reset service moved budget_reset_at on and zeroed the spend
        info = api.ok(api.get("/key/info", {"key": made["token"]}))["info"]
        return datetime.fromisoformat(info["budget_reset_at"]) > window_end and info["spend"] == 0

    wait_for(rolled, what="the budget window to roll")
    assert api.chat(made["key"]).status_code == 200                 # admitted again in the new window


def test_a_team_member_budget_window_reopens_when_it_rolls(api: Api, upstream: FakeUpstream) -> None:
    """``budget_duration`` on /team/member_add: the member's budget is refused, then admitted again
    once the reset service rolled the membership (its ``budget_reset_at`` moved, spend 0)."""
    team_id, user_id = uid("team"), uid("member")
    api.ok(api.post("/team/new", {"team_id": team_id}))
    added = api.ok(api.post("/team/member_add", {"team_id": team_id, "member": {"role": "user", "user_id": user_id},
                                                 "max_budget_in_team": 0.00001, "budget_duration": "2s"}))
    [membership] = added["updated_team_memberships"]
    window_end = datetime.fromisoformat(membership["budget_reset_at"])
    made = api.new_key(team_id=team_id, user_id=user_id)
    assert api.chat(made["key"], max_tokens=MAX_TOKENS).status_code == 200    # spends the member's budget
    refused = api.chat(made["key"])
    assert refused.status_code == 429 and f"User={user_id} in Team={team_id}" in error(refused)["message"]

    def rolled() -> bool:
        info = api.ok(api.get("/team/info", {"team_id": team_id}))
        [m] = [m for m in info["team_memberships"] if m["user_id"] == user_id]
        return datetime.fromisoformat(m["budget_reset_at"]) > window_end and m["spend"] == 0

    wait_for(rolled, what="the member's budget window to roll")
    assert api.chat(made["key"]).status_code == 200                  # admitted again in the new window


def test_an_unknown_model_and_a_hook_free_refusal_leave_no_record(api: Api) -> None:
    """Refused before admission (a model outside the key's list): no record, no rpm spent."""
    made = api.new_key(models=["gpt-held"], rpm_limit=1)
    assert api.chat(made["key"], model="gpt-test").status_code == 403
    assert api.chat(made["key"], model="gpt-test").status_code == 403
    rows = rows_of(api, api_key=made["token"])
    assert rows == []


def test_a_soft_budget_warns_once_and_never_refuses(api: Api, upstream: FakeUpstream) -> None:
    alias = uid("soft")
    made = api.new_key(soft_budget=0.000001, key_alias=alias)
    answers = [api.chat(made["key"]) for _ in range(4)]
    assert [a.status_code for a in answers] == [200] * 4           # past the soft budget: still served
    wanted = f"soft budget reached: key {alias} ("
    wait_for(lambda: wanted in api.proxy.logs(), what="the soft-budget warning")
    assert api.proxy.logs().count(wanted) == 1                      # once, not on every request
    assert made["key"] not in api.proxy.logs()


def test_a_parallel_slot_is_released_after_a_timeout(api: Api, upstream: FakeUpstream) -> None:
    """The upstream never answers within the deployment's timeout: the request fails, its slot
    comes back, and its record is a failure with the timeout's status."""
    made = api.new_key(max_parallel_requests=1)
    hold = threading.Event()
    upstream.set_behavior("up-timeout", Behavior(hold=hold))
    try:
        timed_out = api.chat(made["key"], model="gpt-timeout")
    finally:
        hold.set()
    assert timed_out.status_code in (408, 504), timed_out.text
    assert api.chat(made["key"]).status_code == 200                    # the slot came back
    (row,) = wait_for(lambda: rows_of(api, request_id=timed_out.headers["x-litellm-call-id"]),
                      what="the timed-out request's record")
    assert (row["status"], row["spend"]) == ("failure", 0)
    assert row["metadata"]["error_information"]["error_code"] == str(timed_out.status_code)
