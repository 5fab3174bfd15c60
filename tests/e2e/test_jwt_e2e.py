"""JWT auth through a real ``trioproxy run`` against a local JWKS server (issue #12).

The identity provider is ``support.jwks_server`` (a real HTTP server on 127.0.0.1 with keys made
here); the proxy fetches its keys with its own HTTP client. One proxy, SQLite store:

* valid team token → the team must exist and binds its models; the user named by ``sub`` is
  created on first use (``user_id_upsert``);
* expired, not yet valid, wrong audience, signed by another key, unknown ``kid``, ``alg: none``,
  unknown team → 401 with the reason;
* an admin-scope token is a proxy admin limited to ``admin_allowed_routes`` (management yes,
  inference no, as in LiteLLM);
* a rotated key (new ``kid``) is fetched on first sight;
* the master key and virtual keys keep working beside JWTs;
* a token listing several teams (``groups``) is bound per request to the first listed team that
  may use the model, which pays; none may → 403 with LiteLLM's message; ``x-litellm-team-id``
  picks a listed team only.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import MASTER_KEY
from support.jwks_server import JWKSServer, SigningKey
from support.proxy_process import ProxyProcess, write_config
from support.spend_support import wait_for

KEY = SigningKey("k1")
ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}
AUDIENCE = "api://trioproxy"
CHAT = {"model": "fake-chat", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def idp() -> Iterator[JWKSServer]:
    with JWKSServer(KEY) as server:
        yield server


@pytest.fixture(scope="module")
def proxy(idp: JWKSServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    directory = tmp_path_factory.mktemp("jwt_e2e")
    config = {
        "model_list": [{"model_name": "fake-chat", "litellm_params": {"model": "fake/demo"}},
                       {"model_name": "fake-other", "litellm_params": {"model": "fake/other"}}],
        "general_settings": {
            "master_key": MASTER_KEY, "database_url": f"sqlite:///{directory / 'proxy.db'}",
            "enable_jwt_auth": True,
            "litellm_jwtauth": {"team_id_jwt_field": "client_id", "user_id_jwt_field": "sub",
                                "team_ids_jwt_field": "groups",
                                "user_id_upsert": True, "end_user_id_jwt_field": "customer",
                                "public_key_refetch_interval": 0},
        },
    }
    env = {"JWT_PUBLIC_KEY_URL": idp.url, "JWT_AUDIENCE": AUDIENCE}
    with ProxyProcess(write_config(directory, config), env=env) as process:
        answer = httpx.post(process.base_url + "/team/new", headers=ADMIN,
                            json={"team_id": "team-a", "models": ["fake-chat"]})
        assert answer.status_code == 200, answer.text
        answer = httpx.post(process.base_url + "/team/new", headers=ADMIN,
                            json={"team_id": "team-b", "models": ["fake-other"]})
        assert answer.status_code == 200, answer.text
        yield process


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _chat(proxy: ProxyProcess, token: str, model: str = "fake-chat") -> httpx.Response:
    return httpx.post(proxy.base_url + "/v1/chat/completions", headers=_bearer(token),
                      json={**CHAT, "model": model}, timeout=30)


def _claims(**extra: Any) -> dict[str, Any]:
    return {"aud": AUDIENCE, "client_id": "team-a", "sub": "alice", "customer": "cust-9", **extra}


def test_a_valid_team_token_is_bound_to_its_team(proxy: ProxyProcess) -> None:
    token = KEY.token(_claims())
    assert _chat(proxy, token).status_code == 200
    refused = _chat(proxy, token, model="fake-other")        # the team's models bind the token
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["type"] == "team_model_access_denied"
    models = httpx.get(proxy.base_url + "/v1/models", headers=_bearer(token)).json()["data"]
    assert [m["id"] for m in models] == ["fake-chat"]
    # user_id_upsert: the token's user now exists in the store
    user = httpx.get(proxy.base_url + "/user/info", params={"user_id": "alice"}, headers=ADMIN)
    assert user.status_code == 200, user.text
    # a team token may not call management routes (team_allowed_routes: openai and info routes)
    refused = httpx.post(proxy.base_url + "/team/new", headers=_bearer(token), json={"team_id": "x"})
    assert refused.status_code == 403 and "Team not allowed to access this route" in refused.json()["error"]["message"]


@pytest.mark.parametrize(("token", "reason"), [
    (lambda: KEY.token(_claims(), lifetime=-60), "Token Expired"),
    (lambda: KEY.token(_claims(nbf=int(time.time()) + 3600)), "Token not yet valid"),
    (lambda: KEY.token(_claims(aud="api://someone-else")), "audience"),
    (lambda: SigningKey("k1").token(_claims()), "signature verification failed"),
    (lambda: SigningKey("k-unknown").token(_claims()), "no public key with kid 'k-unknown'"),
    (lambda: KEY.token(_claims(client_id="team-nope")), "Team doesn't exist in db. Team=team-nope"),
], ids=["expired", "not-yet-valid", "wrong-audience", "other-key", "unknown-kid", "unknown-team"])
def test_bad_tokens_are_refused_with_the_reason(proxy: ProxyProcess, token: Any, reason: str) -> None:
    answer = _chat(proxy, token())
    assert answer.status_code == 401, answer.text
    assert reason in answer.json()["error"]["message"]


def test_alg_none_is_refused(proxy: ProxyProcess) -> None:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    unsigned = f"{part({'alg': 'none', 'typ': 'JWT', 'kid': 'k1'})}.{part(_claims(exp=int(time.time()) + 600))}."
    answer = _chat(proxy, unsigned)
    assert answer.status_code == 401 and "algorithm 'none' is not accepted" in answer.json()["error"]["message"]


def test_an_admin_scope_token_is_a_proxy_admin_for_management_routes(proxy: ProxyProcess) -> None:
    token = KEY.token({"aud": AUDIENCE, "sub": "ops", "scope": "openid litellm_proxy_admin"})
    listed = httpx.get(proxy.base_url + "/team/list", headers=_bearer(token))
    assert listed.status_code == 200, listed.text
    made = httpx.post(proxy.base_url + "/team/new", headers=_bearer(token), json={"team_id": "team-made-by-jwt"})
    assert made.status_code == 200, made.text
    inference = _chat(proxy, token)   # admin_allowed_routes: management, spend, info — not inference
    assert inference.status_code == 403 and "Admin not allowed" in inference.json()["error"]["message"]


def test_a_rotated_key_is_fetched_on_first_sight(proxy: ProxyProcess, idp: JWKSServer) -> None:
    rotated = SigningKey("k2")
    idp.document = {"keys": [KEY.jwk, rotated.jwk]}
    before = idp.hits
    assert _chat(proxy, rotated.token(_claims())).status_code == 200
    assert idp.hits == before + 1


def test_master_and_virtual_keys_work_beside_jwts(proxy: ProxyProcess) -> None:
    assert _chat(proxy, MASTER_KEY).status_code == 200
    key = httpx.post(proxy.base_url + "/key/generate", headers=ADMIN, json={}).json()["key"]
    assert _chat(proxy, key).status_code == 200
    assert _chat(proxy, "sk-no-such-key").status_code == 401


def _groups(groups: list[str], sub: str = "bob") -> str:
    return KEY.token({"aud": AUDIENCE, "sub": sub, "groups": groups})


def _spend_row(proxy: ProxyProcess, request_id: str) -> dict[str, Any]:
    """The request's ``/spend/logs`` row, once the proxy has written it."""
    def row() -> dict[str, Any] | None:
        rows = httpx.get(proxy.base_url + "/spend/logs", params={"request_id": request_id}, headers=ADMIN).json()
        return next((r for r in rows if r["request_id"] == request_id), None)
    return wait_for(row, what=f"the spend row of {request_id}")  # type: ignore[no-any-return]


def test_a_several_teams_token_is_bound_per_model_to_the_team_that_pays(proxy: ProxyProcess) -> None:
    token = _groups(["team-unknown", "team-a", "team-b"])
    chat = _chat(proxy, token, model="fake-chat")
    assert chat.status_code == 200, chat.text
    other = _chat(proxy, token, model="fake-other")
    assert other.status_code == 200, other.text
    assert _spend_row(proxy, chat.headers["x-litellm-call-id"])["team_id"] == "team-a"
    assert _spend_row(proxy, other.headers["x-litellm-call-id"])["team_id"] == "team-b"


def test_a_several_teams_token_no_team_of_which_may_use_the_model_is_refused(proxy: ProxyProcess) -> None:
    refused = _chat(proxy, _groups(["team-a"]), model="fake-other")
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert error["message"] == ("No team has access to the requested model: fake-other. Checked teams=['team-a']. "
                                "Check `/models` to see all available models.")
    assert error["type"] == "team_model_access_denied" and error["param"] == "model"
    unknown = _chat(proxy, _groups(["team-x", "team-y"]))       # unknown teams bind nothing
    assert unknown.status_code == 403, unknown.text
    assert "Checked teams=['team-x', 'team-y']" in unknown.json()["error"]["message"]


def test_the_team_header_picks_one_of_the_tokens_teams(proxy: ProxyProcess) -> None:
    token = _groups(["team-a", "team-b"])
    picked = httpx.post(proxy.base_url + "/v1/chat/completions", json=CHAT, timeout=30,
                        headers={**_bearer(token), "x-litellm-team-id": "team-b"})
    assert picked.status_code == 403, picked.text      # team-b may not use fake-chat
    assert picked.json()["error"]["type"] == "team_model_access_denied"
    assert "Team=team-b" in picked.json()["error"]["message"]
    foreign = httpx.post(proxy.base_url + "/v1/chat/completions", json=CHAT, timeout=30,
                         headers={**_bearer(token), "x-litellm-team-id": "team-other"})
    assert foreign.status_code == 403, foreign.text
    assert foreign.json()["error"]["message"] == ("Team 'team-other' from x-litellm-team-id header is not in your "
                                                  "JWT's allowed teams. Allowed teams: ['team-a', 'team-b']")


def test_a_several_teams_token_lists_the_models_of_its_teams(proxy: ProxyProcess) -> None:
    def listed(groups: list[str]) -> list[str]:
        answer = httpx.get(proxy.base_url + "/v1/models", headers=_bearer(_groups(groups)))
        assert answer.status_code == 200, answer.text
        return [m["id"] for m in answer.json()["data"]]

    assert listed(["team-a"]) == ["fake-chat"]
    assert listed(["team-b", "team-a"]) == ["fake-chat", "fake-other"]
    assert listed(["team-x"]) == []
    assert httpx.get(proxy.base_url + "/v1/models/fake-other", headers=_bearer(_groups(["team-a"]))).status_code == 404
