"""``/team/list`` and ``/customer/list`` through a real ``trioproxy run`` (SQLite and PostgreSQL):
LiteLLM's JSON array, one page at a time, the totals in headers."""

from __future__ import annotations

import uuid

from support.keys_support import Api, error


def test_lists_are_arrays_with_paging_headers(api: Api) -> None:
    org = f"org-{uuid.uuid4().hex[:8]}"
    for _ in range(3):
        api.ok(api.post("/team/new", {"organization_id": org}))
        api.ok(api.post("/customer/new", {"user_id": f"c-{uuid.uuid4().hex[:8]}"}))
    response = api.get("/team/list", {"organization_id": org, "page_size": "2"})
    body = api.ok(response)
    assert isinstance(body, list) and len(body) == 2 and body[0]["organization_id"] == org
    assert (response.headers["x-total-count"], response.headers["x-page"], response.headers["x-page-size"],
            response.headers["x-total-pages"]) == ("3", "1", "2", "2")
    assert len(api.ok(api.get("/team/list", {"organization_id": org, "page": "2", "page_size": "2"}))) == 1
    response = api.get("/customer/list")
    assert isinstance(api.ok(response), list) and response.headers["x-page-size"] == "100"
    assert int(response.headers["x-total-count"]) >= 3
    for path in ("/team/list", "/customer/list", "/end_user/list"):
        refused = api.get(path, {"page_size": "1001"})
        assert refused.status_code == 400
        assert error(refused)["message"] == f"{path.replace('/end_user', '/customer')}: 'page_size' must be an " \
            "integer of at least 1 and at most 1000"


def test_v2_team_list_answers_litellms_envelope(api: Api) -> None:
    org = f"org-{uuid.uuid4().hex[:8]}"
    made = [api.ok(api.post("/team/new", {"organization_id": org}))["team_id"] for _ in range(3)]
    body = api.ok(api.get("/v2/team/list", {"organization_id": org, "page_size": "2"}))
    assert (body["total"], body["page"], body["page_size"], body["total_pages"]) == (3, 1, 2, 2)
    assert [t["team_id"] for t in body["teams"]] == made[:2]
    assert api.ok(api.get("/v2/team/list", {"organization_id": org, "page": "2", "page_size": "2"}))["teams"][0][
        "team_id"] == made[2]
    assert api.ok(api.get("/v2/team/list"))["page_size"] == 10                # LiteLLM's default page size
    refused = api.get("/v2/team/list", {"team_alias": "x"})                   # a LiteLLM filter trioproxy lacks
    assert refused.status_code == 400 and error(refused)["param"] == "team_alias"
