"""``JWTRecords``: a verified JWT's caller as a key record bound to the store's team and user.

On SQLite and PostgreSQL (the store tests' ``backend`` parameter): the team must exist unless
``team_id_upsert``; ``user_id_upsert`` creates the user; a blocked team is a 401; an admin-scope
token is a proxy admin whatever the stored role; rows are cached and dropped on invalidation; the
record's token is stable per subject.
"""

from __future__ import annotations

import pytest

from trioproxy.access import JWTAuthSettings, identity_from_claims
from trioproxy.errors import AuthenticationError
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
