"""LiteLLM's key-generation and enterprise settings through the management API of a real ``trioproxy
run``, on SQLite and on PostgreSQL: ``default_key_generate_params``, ``upperbound_key_generate_params``,
``key_generation_settings``, ``reject_clientside_metadata_tags``, ``store_prompts_in_spend_logs``,
``custom_team_metadata_validate`` and ``disable_prisma_schema_update`` (docs/keys.md).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from support.fake_upstream import FakeUpstream
from support.keys_support import (
    UPSTREAM_KEY,
    Api,
    Database,
    FakeGuard,
    error,
    keys_config,
    make_database,
)
from support.proxy_process import ProxyProcess, write_config
from support.spend_support import rows_of, wait_for

TEAM_META = '''
import trio
from trioproxy import TeamMetadataValidationPayload, TeamMetadataValidationResult

SEEN = []


async def validate(payload: TeamMetadataValidationPayload) -> TeamMetadataValidationResult:
    centre = payload.metadata.get("cost_center")
    if centre == "HANG":
        await trio.sleep_forever()
    if centre == "BOOM":
        raise RuntimeError("the finance service is down")
    if centre not in ("CC-1001", "CC-1002"):
        return TeamMetadataValidationResult(valid=False, error_message=f"unknown cost_center for {payload.operation}")
    return TeamMetadataValidationResult(valid=True)
'''

SETTINGS = {
    "litellm_settings": {
        "default_key_generate_params": {"max_budget": 1.5, "models": ["gpt-test"], "duration": None,
                                        "metadata": {"setting": "default"}},
        "upperbound_key_generate_params": {"max_budget": 100, "duration": "30d", "rpm_limit": 1000},
        "key_generation_settings": {
            "team_key_generation": {"allowed_team_member_roles": ["admin"], "required_params": ["tags"]},
            "personal_key_generation": {"allowed_user_roles": ["proxy_admin"]},   # the docs' example
        },
    },
    "reject_clientside_metadata_tags": True,
    "store_prompts_in_spend_logs": True,
    "custom_team_metadata_validate": "team_meta.validate",
    "team_metadata_validation_timeout": 0.5,
    "team_metadata_validation_error_message": "Cost center check unavailable; the team was not saved.",
}


@pytest.fixture(scope="module")
def gproxy(database: Database, upstream: FakeUpstream, guard: FakeGuard,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    from support.keys_support import GUARDRAILS_FILE, REFLECT_FILE

    directory = tmp_path_factory.mktemp("gen")
    path = write_config(directory, keys_config(upstream, database.url, **SETTINGS),
                        files={"reflect.py": REFLECT_FILE, "guards.py": GUARDRAILS_FILE, "team_meta.py": TEAM_META})
    process = ProxyProcess(path, env={"LLM_GUARD_API_BASE": guard.url + "/"})
    yield process
    process.kill()


@pytest.fixture(scope="module")
def gapi(gproxy: ProxyProcess) -> Iterator[Api]:
    client = Api(gproxy)
    yield client
    client.close()


@pytest.fixture(scope="module")
def members(gapi: Api) -> dict[str, str]:
    """Keys of: a team admin of t-gen, a plain member of it, an outsider, a viewer (all made by the master key)."""
    for user, role in (("g-admin", "internal_user"), ("g-member", "internal_user"), ("g-outsider", "internal_user"),
                       ("g-viewer", "proxy_admin_viewer")):
        gapi.ok(gapi.post("/user/new", {"user_id": user, "user_role": role}))
    gapi.ok(gapi.post("/team/new", {"team_id": "t-gen", "metadata": {"cost_center": "CC-1001"},
                                    "members_with_roles": [{"user_id": "g-admin", "role": "admin"},
                                                           {"user_id": "g-member", "role": "user"}]}))
    return {user: gapi.new_key(user_id=user)["key"] for user in ("g-admin", "g-member", "g-outsider", "g-viewer")}


def _info(api: Api, key: str) -> dict[str, Any]:
    return api.ok(api.get("/key/info", {"key": key}))["info"]  # type: ignore[no-any-return]


def test_defaults_fill_what_the_request_leaves_out_and_bounds_cap_it(gapi: Api) -> None:
    made = gapi.new_key()
    info = _info(gapi, made["key"])
    assert info["max_budget"] == 1.5 and info["models"] == ["gpt-test"] and info["rpm_limit"] == 1000
    assert info["metadata"] == {"setting": "default"}
    expires = datetime.fromisoformat(made["expires"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)   # the bound's lifetime
    explicit = _info(gapi, gapi.new_key(max_budget=50, models=["gpt-other"], rpm_limit=10)["key"])
    assert explicit["max_budget"] == 50 and explicit["models"] == ["gpt-other"] and explicit["rpm_limit"] == 10
    over = gapi.post("/key/generate", {"max_budget": 200})
    assert over.status_code == 400
    assert error(over)["message"] == "max_budget is over max limit set in config - user_value=200.0; max_value=100.0"
    longer = gapi.post("/key/generate", {"duration": "60d"})
    assert longer.status_code == 400 and "duration is over max limit" in error(longer)["message"]
    assert gapi.post("/key/generate", {"rpm_limit": 1001}).status_code == 400


def test_key_generation_settings_decide_who_besides_admins_may_generate(gapi: Api, members: dict[str, str]) -> None:
    plain = gapi.post("/key/generate", {"team_id": "t-gen", "tags": ["x"]}, key=members["g-member"])
    assert plain.status_code == 400
    assert error(plain)["message"] == "Team member role user not in allowed_team_member_roles=['admin']"
    untagged = gapi.post("/key/generate", {"team_id": "t-gen"}, key=members["g-admin"])
    assert untagged.status_code == 400 and error(untagged)["message"] == "Required param tags not in data"
    team_key = gapi.ok(gapi.post("/key/generate", {"team_id": "t-gen", "tags": ["cost"]}, key=members["g-admin"]))
    info = _info(gapi, team_key["key"])
    assert info["team_id"] == "t-gen" and info["user_id"] == "g-admin" and info["metadata"]["tags"] == ["cost"]
    outsider = gapi.post("/key/generate", {"team_id": "t-gen", "tags": ["x"]}, key=members["g-outsider"])
    assert outsider.status_code == 400 and "not assigned to team=t-gen" in error(outsider)["message"]
    personal = gapi.post("/key/generate", {}, key=members["g-outsider"])
    assert personal.status_code == 400
    assert error(personal)["message"] == ("Personal key creation has been restricted by admin. Allowed roles="
                                          "['proxy_admin']. Your role=internal_user")
    assert gapi.new_key()["key"]   # the master key is a proxy admin
    for_other = gapi.post("/key/generate", {"user_id": "g-admin"}, key=members["g-outsider"])
    assert for_other.status_code == 403 and "only create keys for themselves" in error(for_other)["message"]
    escalate = gapi.post("/key/generate", {"permissions": {"hide_secrets": False}}, key=members["g-outsider"])
    assert escalate.status_code == 403 and "permissions" in error(escalate)["message"]
    assert gapi.post("/key/generate", {}, key=members["g-viewer"]).status_code == 403   # the route rules: reads only
    assert gapi.post("/user/new", {"user_id": "g-nope"}, key=members["g-admin"]).status_code == 403   # still admin only


def test_client_side_tags_are_refused(gapi: Api) -> None:
    key = gapi.new_key()["key"]
    tagged = gapi.chat(key, metadata={"tags": ["free-budget"]})
    assert tagged.status_code == 400 and error(tagged)["param"] == "metadata.tags"
    top = gapi.chat(key, tags=["free-budget"])
    assert top.status_code == 400 and error(top)["param"] == "tags"
    assert gapi.chat(key, metadata={"note": "fine"}).status_code == 200


def test_prompts_and_answers_are_kept_in_the_spend_rows_with_secrets_scrubbed(gapi: Api) -> None:
    made = gapi.new_key()
    answer = gapi.chat(made["key"], content=f"my provider key is {UPSTREAM_KEY}")
    assert answer.status_code == 200, answer.text
    request_id = answer.json()["id"]
    rows = wait_for(lambda: [r for r in rows_of(gapi, api_key=made["token"]) if r["request_id"] == request_id],
                    what="the spend row")
    row = rows[0]
    assert row["messages"][0]["role"] == "user" and "my provider key is" in row["messages"][0]["content"]
    assert UPSTREAM_KEY not in str(row) and row["response"]["choices"][0]["message"]["content"]
    assert row["proxy_server_request"]["model"] == "gpt-test"


def test_team_metadata_is_validated_before_it_is_written(gapi: Api) -> None:
    assert gapi.post("/team/new", {"team_id": "t-cc", "metadata": {"cost_center": "CC-1002"}}).status_code == 200
    rejected = gapi.post("/team/new", {"team_id": "t-bad", "metadata": {"cost_center": "CC-9"}})
    assert rejected.status_code == 400 and error(rejected)["message"] == "unknown cost_center for create"
    for centre in ("HANG", "BOOM"):
        down = gapi.post("/team/new", {"team_id": f"t-{centre}", "metadata": {"cost_center": centre}})
        assert down.status_code == 503 and error(down)["message"] == SETTINGS["team_metadata_validation_error_message"]
    assert gapi.get("/team/info", {"team_id": "t-bad"}).status_code == 404   # nothing was written
    update = gapi.post("/team/update", {"team_id": "t-cc", "metadata": {"cost_center": "nope"}})
    assert update.status_code == 400 and error(update)["message"] == "unknown cost_center for update"
    assert gapi.ok(gapi.get("/team/info", {"team_id": "t-cc"}))["team_info"]["metadata"]["cost_center"] == "CC-1002"
    assert gapi.post("/team/update", {"team_id": "t-cc", "max_budget": 5}).status_code == 200   # metadata untouched


def test_disable_prisma_schema_update_never_migrates_at_startup(backend: str, pg: str | None, tmp_path: Path) -> None:
    empty = make_database(backend, tmp_path / "db", pg)
    try:
        config = {"model_list": [{"model_name": "m", "litellm_params": {"model": "fake/m"}}],
                  "general_settings": {"master_key": "sk-master-schema-0123456789", "database_url": empty.url,
                                       "disable_prisma_schema_update": True}}
        path = write_config(tmp_path / "cfg", config)
        with pytest.raises(RuntimeError, match="Run `trioproxy db upgrade` first"):
            ProxyProcess(path)
        assert b"spend_logs" not in empty.everything()   # nothing was created
        subprocess.run([sys.executable, "-m", "trioproxy", "db", "upgrade", str(path)], check=True,
                       capture_output=True, timeout=120)
        with ProxyProcess(path) as proxy:
            assert "not migrated at startup" in proxy.logs()
    finally:
        empty.drop()
