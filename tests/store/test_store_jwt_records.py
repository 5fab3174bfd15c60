"""``JWTRecords``: a verified JWT's caller as a key record bound to the store's team and user.

On SQLite and PostgreSQL (the store tests' ``backend`` parameter): the team must exist unless
``team_id_upsert``; ``user_id_upsert`` creates the user; a blocked team is a 401; an admin-scope
token is a proxy admin whatever the stored role; rows are cached and dropped on invalidation; the
record's token is stable per subject.
"""

from __future__ import annotations

import pytest

from trioproxy.access import JWTAuthSettings, identity_from_claims
from trioproxy.auth.key_rules import TeamModelAccessDenied
from trioproxy.errors import AuthenticationError, PermissionDeniedError
from trioproxy.store import Store
from trioproxy.store.jwt_records import JWTRecords
from trioproxy.store.repositories.base import Actor


def jwt(claims: dict, **settings) -> object:
    parsed = JWTAuthSettings.from_config({"enable_jwt_auth": True, "litellm_jwtauth": {
        "team_id_jwt_field": "client_id", "user_id_jwt_field": "sub", **settings}},
        {"JWT_PUBLIC_KEY_URL": "https://idp.example/certs", "JWT_AUDIENCE": "a"})
    return identity_from_claims({"exp": 2_000_000_000, "iss": "idp", **claims}, parsed)


async def test_the_team_must_exist_and_binds_the_record(store: Store) -> None:
    records = JWTRecords(store)
    with pytest.raises(AuthenticationError, match="Team doesn't exist in db. Team=t1"):
        await records.record_for(jwt({"client_id": "t1", "sub": "u1"}))
    await store.teams.create({"team_id": "t1", "models": ["m1"], "max_budget": 5_000_000}, [], Actor("t"))
    record = await records.record_for(jwt({"client_id": "t1", "sub": "u1"}))
    assert record.team.models == ("m1",) and record.team.max_budget == 5_000_000
    assert record.user is None and record.user_id == "u1" and record.team_id == "t1"
    again = await records.record_for(jwt({"client_id": "t1", "sub": "u1"}))
    assert again.token == record.token and record.key_name == "jwt"     # stable per issuer + subject
    user = record.to_user_api_key_auth()
    assert user.team_models == ["m1"] and user.team_max_budget == 5.0


async def test_upserts_create_the_team_and_the_user(store: Store) -> None:
    records = JWTRecords(store)
    token = jwt({"client_id": "t-new", "sub": "new-user"}, team_id_upsert=True, user_id_upsert=True)
    record = await records.record_for(token)
    assert record.team is not None and record.team.team_id == "t-new"
    assert record.user is not None and record.user.user_role == "internal_user"
    assert (await store.users.get("new-user")) is not None and (await store.teams.get("t-new")) is not None
    await records.record_for(token)   # a second time: found, not created again


async def test_a_blocked_team_is_refused_and_invalidation_is_seen(store: Store) -> None:
    records = JWTRecords(store)
    await store.teams.create({"team_id": "t2"}, [], Actor("t"))
    await records.record_for(jwt({"client_id": "t2", "sub": "u"}))        # cached
    await store.teams.set_blocked("t2", True, Actor("t"))                   # publishes the team's invalidation
    with pytest.raises(AuthenticationError, match="Team=t2 is blocked"):
        await records.record_for(jwt({"client_id": "t2", "sub": "u"}))


async def test_an_admin_scope_token_is_a_proxy_admin(store: Store) -> None:
    await store.users.create({"user_id": "ops", "user_role": "internal_user"}, Actor("t"))
    record = await JWTRecords(store).record_for(jwt({"sub": "ops", "scope": "litellm_proxy_admin"}))
    assert record.user_role == "proxy_admin"


def groups_jwt(claims: dict) -> object:
    return jwt(claims, team_ids_jwt_field="groups")


async def test_a_several_teams_token_gets_the_first_listed_team_that_may_use_the_model(store: Store) -> None:
    records = JWTRecords(store)
    await store.teams.create({"team_id": "g-chat", "models": ["m-chat"]}, [], Actor("t"))
    await store.teams.create({"team_id": "g-all"}, [], Actor("t"))        # no models: every model
    await store.teams.create({"team_id": "g-blocked", "models": ["m-emb"]}, [], Actor("t"))
    await store.teams.set_blocked("g-blocked", True, Actor("t"))
    token = groups_jwt({"groups": ["g-unknown", "g-blocked", "g-chat", "g-all"], "sub": "u1"})
    assert JWTRecords.needs_team(token)
    unbound = await records.record_for(token)       # authentication alone binds no team
    assert unbound.team is None and unbound.team_id is None
    chat = await records.record_for_model(token, "m-chat")
    assert chat.team_id == "g-chat" and chat.team is not None and chat.team.models == ("m-chat",)
    other = await records.record_for_model(token, "m-emb")    # unknown and blocked teams are passed over
    assert other.team_id == "g-all"
    assert chat.token == other.token                          # one subject, whichever team pays


async def test_no_listed_team_may_use_the_model_is_litellms_refusal(store: Store) -> None:
    records = JWTRecords(store)
    await store.teams.create({"team_id": "g-only", "models": ["m-chat"]}, [], Actor("t"))
    token = groups_jwt({"groups": ["g-only", "g-missing"], "sub": "u1"})
    with pytest.raises(TeamModelAccessDenied) as refused:
        await records.record_for_model(token, "m-other")
    assert refused.value.message == ("No team has access to the requested model: m-other. Checked teams=['g-only', "
                                     "'g-missing']. Check `/models` to see all available models.")
    assert refused.value.status_code == 403
    with pytest.raises(TeamModelAccessDenied, match="Checked teams=\\['g-nope'\\]"):
        await records.record_for_model(groups_jwt({"groups": ["g-nope"], "sub": "u1"}), "m-chat")


async def test_the_team_header_picks_a_listed_team_only(store: Store) -> None:
    records = JWTRecords(store)
    await store.teams.create({"team_id": "h1", "models": ["m1"]}, [], Actor("t"))
    await store.teams.create({"team_id": "h2", "models": ["m2"]}, [], Actor("t"))
    token = groups_jwt({"groups": ["h1", "h2"], "sub": "u1"})
    picked = await records.record_for_model(token, "m1", header_team_id="h2")
    assert picked.team_id == "h2"      # the header decides; the key rules then refuse m1 for h2
    with pytest.raises(PermissionDeniedError, match="Team 'h3' from x-litellm-team-id header is not in your JWT's "
                                                    "allowed teams. Allowed teams: \\['h1', 'h2'\\]"):
        await records.record_for_model(token, "m1", header_team_id="h3")


async def test_a_token_naming_its_team_is_not_rebound(store: Store) -> None:
    token = jwt({"client_id": "t1", "groups": ["a", "b"], "sub": "u"}, team_ids_jwt_field="groups")
    assert not JWTRecords.needs_team(token)
    admin = groups_jwt({"groups": ["a"], "sub": "ops", "scope": "litellm_proxy_admin"})
    assert not JWTRecords.needs_team(admin)


async def test_enforce_team_based_model_access_refuses_a_token_without_teams(store: Store) -> None:
    records = JWTRecords(store)
    settings = {"team_id_jwt_field": None, "team_ids_jwt_field": "groups", "enforce_team_based_model_access": True}
    with pytest.raises(PermissionDeniedError, match="No teams found in token. `enforce_team_based_model_access` is "
                                                    "set to True. Token must belong to a team."):
        await records.record_for(jwt({"sub": "u1"}, **settings))
    await store.teams.create({"team_id": "e1"}, [], Actor("t"))
    assert (await records.record_for_model(jwt({"sub": "u1", "groups": ["e1"]}, **settings), "m")).team_id == "e1"
    admin = await records.record_for(jwt({"sub": "ops", "scope": "litellm_proxy_admin"}, **settings))
    assert admin.user_role == "proxy_admin"
