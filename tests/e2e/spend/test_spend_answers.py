"""What is recorded for answers the upstream did not write, and for the master key; the spend
endpoints' authorization — through a real ``trioproxy run`` on SQLite and on PostgreSQL.

* A pre-call hook's string answer (plain and streamed), a pre-call rejection after admission and a
  response-cache hit: one record each, keyed by the ``id`` the client received (the request's own
  id, also for a cache hit, whose stored answer carried another request's id).
* The master key is never limited, and is counted in the proxy's budget
  (``litellm_settings.max_budget``): once its spend passes it, virtual keys are refused and the
  master key is still served; ``/global/spend`` shows it.
* The spend endpoints follow the management routes' rules: admins read everything, a plain key
  its own records, ``/spend/calculate`` is for any key.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import orjson
import pytest

from support.fake_upstream import FakeUpstream
from support.keys_support import Api, Database, error
from support.proxy_process import ProxyProcess, write_config
from support.spend_support import INPUT_PRICE, OUTPUT_PRICE, rows_of, spend_config, wait_for

HANDLER = '''
from trioproxy import CustomLogger, HTTPException


class Canned(CustomLogger):
    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        text = (data.get("messages") or [{}])[-1].get("content")
        if text == "canned":
            return "a canned answer"
        if text == "reject":
            raise HTTPException(status_code=400, detail="rejected by the canned hook")
        return None


canned = Canned()
'''

PROXY_BUDGET = 0.0005


@pytest.fixture(scope="module")
def proxy(database: Database, upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    config = spend_config(upstream, database.url, files_callbacks=["canned.canned"],
                          litellm={"cache": True, "cache_params": {"type": "local"}, "max_budget": PROXY_BUDGET})
    process = ProxyProcess(write_config(tmp_path_factory.mktemp("proxy"), config, files={"canned.py": HANDLER}))
    yield process
    process.kill()


def chat(api: Api, content: str, key: str | None = None, **body: object) -> httpx.Response:
    return api.post("/v1/chat/completions", {"model": "gpt-test", "messages": [{"role": "user", "content": content}],
                                             **body}, key=key)


def record(api: Api, request_id: str) -> dict[str, object]:
    (row,) = wait_for(lambda: rows_of(api, request_id=request_id), what=f"the record of {request_id}")
    return row  # type: ignore[no-any-return]


def test_a_pre_call_string_answer_is_recorded_under_its_id(api: Api) -> None:
    plain = chat(api, "canned")
    assert plain.status_code == 200 and plain.json()["choices"][0]["message"]["content"] == "a canned answer"
    assert plain.json()["id"] == plain.headers["x-litellm-call-id"]
    row = record(api, plain.json()["id"])
    assert (row["status"], row["spend"], row["model_group"], row["api_key"]) == ("success", 0, "gpt-test", "")
    streamed = chat(api, "canned", stream=True)
    chunks = [orjson.loads(line[6:]) for line in streamed.text.splitlines()
              if line.startswith("data: {")]
    assert {c["id"] for c in chunks} == {streamed.headers["x-litellm-call-id"]}
    assert record(api, streamed.headers["x-litellm-call-id"])["status"] == "success"


def test_a_rejection_after_admission_is_a_failure_record(api: Api) -> None:
    rejected = chat(api, "reject")
    assert rejected.status_code == 400 and error(rejected)["message"] == "rejected by the canned hook"
    row = record(api, rejected.headers["x-litellm-call-id"])
    assert row["status"] == "failure" and row["spend"] == 0
    assert row["metadata"]["error_information"]["error_code"] == "400"     # type: ignore[index]


def test_a_parallel_slot_is_released_after_a_hook_rejection(api: Api) -> None:
    made = api.new_key(max_parallel_requests=1)
    assert chat(api, "reject", key=made["key"]).status_code == 400     # admitted, then rejected
    assert chat(api, f"fine {uuid.uuid4().hex}", key=made["key"]).status_code == 200   # the slot came back


def test_a_responses_api_answer_is_recorded_under_the_id_its_client_received(api: Api) -> None:
    made = api.new_key()
    answer = api.post("/v1/responses", {"model": "gpt-test", "input": f"hello {uuid.uuid4().hex}"},
                      key=made["key"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["object"] == "response" and body["id"].startswith("resp_")
    assert body["id"] == answer.headers["x-litellm-call-id"]
    row = record(api, body["id"])
    assert (row["status"], row["api_key"]) == ("success", made["token"]) and row["spend"] > 0


def test_a_cache_hit_has_its_own_id_and_record(api: Api) -> None:
    content = f"cache me {uuid.uuid4().hex}"
    first, second = chat(api, content), chat(api, content)
    assert second.headers.get("x-trioproxy-cache-hit") == "true"
    assert second.json()["id"] == second.headers["x-litellm-call-id"] != first.json()["id"]
    assert second.json()["choices"] == first.json()["choices"]
    hit = record(api, second.json()["id"])
    assert (hit["cache_hit"], hit["spend"], hit["status"]) == ("True", 0, "success")
    assert record(api, first.json()["id"])["cache_hit"] == "False"


def test_the_spend_endpoints_authorize_like_the_management_routes(api: Api) -> None:
    """docs/access.md's role table: the ``spend`` rule lets internal users (their own records) and
    viewers in, not a key without a user (it sees its spend in ``/key/info``)."""
    internal_user = f"internal-{uuid.uuid4().hex[:6]}"
    api.ok(api.post("/user/new", {"user_id": internal_user, "user_role": "internal_user"}))
    mine = api.new_key(user_id=internal_user)
    userless = api.new_key()
    assert api.get("/spend/logs", key=userless["key"]).status_code == 403
    viewer_user = f"viewer-{uuid.uuid4().hex[:6]}"
    api.ok(api.post("/user/new", {"user_id": viewer_user, "user_role": "proxy_admin_viewer"}))
    viewer = api.new_key(user_id=viewer_user)
    answered = chat(api, "canned", key=mine["key"])
    own = wait_for(lambda: rows_of_key(api, mine["key"]), what="the key's own record")
    assert [r["request_id"] for r in own] == [answered.headers["x-litellm-call-id"]]
    other = api.get("/spend/logs", {"api_key": viewer["token"]}, key=mine["key"])
    assert other.status_code == 400
    for path in ("/global/spend", "/spend/tags", "/global/spend/keys", "/global/spend/models"):
        assert api.get(path, key=mine["key"]).status_code == 403, path
        assert api.get(path, key=viewer["key"]).status_code == 200, path
    calculated = api.post("/spend/calculate", {"completion_response": {
        "model": "gpt-test", "usage": {"prompt_tokens": 10, "completion_tokens": 20}}}, key=mine["key"])
    assert api.ok(calculated)["cost"] == pytest.approx(10 * INPUT_PRICE + 20 * OUTPUT_PRICE)
    assert api.post("/spend/calculate", {"model": "gpt-test"}, key=mine["key"]).status_code == 400
    assert api.post("/spend/calculate", {"model": "gpt-test"}, key=None).status_code == 400   # public (LiteLLMRoutes.public_routes)
    assert api.client.get("/spend/logs").status_code == 401


def rows_of_key(api: Api, key: str) -> list[dict[str, object]]:
    return api.ok(api.get("/spend/logs", key=key))  # type: ignore[no-any-return]


def test_the_master_key_is_counted_in_the_proxy_budget_and_never_refused(api: Api, upstream: FakeUpstream) -> None:
    """Runs last in this module: it spends the proxy's budget."""
    key = api.new_key()["key"]
    assert chat(api, f"before {uuid.uuid4().hex}", key=key).status_code == 200
    spent = 0.0
    while spent < PROXY_BUDGET * 1.5:           # the master key spends past the proxy's budget
        answer = chat(api, f"master {uuid.uuid4().hex}")
        assert answer.status_code == 200
        spent += float(answer.headers["x-litellm-response-cost"])
    total = wait_for(lambda: (g := api.ok(api.get("/global/spend")))["spend"] >= spent and g,
                     what="the master key's spend in /global/spend")
    assert total["max_budget"] == PROXY_BUDGET
    refused = chat(api, f"after {uuid.uuid4().hex}", key=key)
    assert refused.status_code == 429 and error(refused)["type"] == "budget_exceeded"
    assert error(refused)["message"].startswith("Budget has been exceeded! Current cost: ")
    assert error(refused)["message"].endswith(f"Max budget: {PROXY_BUDGET}")
    assert chat(api, f"master again {uuid.uuid4().hex}").status_code == 200
