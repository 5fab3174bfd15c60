"""JWT auth against a real JWKS server on 127.0.0.1 with keys made in the test
(trioproxy/access/jwt.py, jwks.py). The cache's timing rules run in virtual time with an in-memory
fetcher at the end of the file."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx
import pytest
import trio
from cryptography.hazmat.primitives import serialization

from support.jwks_server import JWKSServer, SigningKey
from trioproxy.access import (
    AccessConfigError,
    AccessDenied,
    AccessUnauthenticated,
    AuthProviderUnavailable,
    JWTAuthenticator,
    JWTAuthSettings,
    Role,
    RouteRules,
    authorize,
    caller_for_jwt,
    http_fetcher,
    jwt_not_enabled_error,
    looks_like_jwt,
)
from trioproxy.access import jwt as jwt_module
from trioproxy.errors import error_body

KEY = SigningKey("k1")


def settings_for(url: str, audience: str | None = "trioproxy", **jwtauth) -> JWTAuthSettings:
    env = {"JWT_PUBLIC_KEY_URL": url}
    if audience:
        env["JWT_AUDIENCE"] = audience
    jwtauth.setdefault("team_id_jwt_field", "client_id")
    settings = JWTAuthSettings.from_config({"enable_jwt_auth": True, "litellm_jwtauth": jwtauth}, env)
    assert settings is not None
    return settings


@pytest.fixture
def idp():
    with JWKSServer(KEY) as server:
        yield server


@pytest.fixture
async def http():
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


def authenticator(idp_or_url, http, **kw) -> JWTAuthenticator:
    url = idp_or_url if isinstance(idp_or_url, str) else idp_or_url.url
    return JWTAuthenticator(settings_for(url, **kw), http_fetcher(http))


async def refused(auth, token, exc=AccessUnauthenticated):
    with pytest.raises(exc) as info:
        await auth.authenticate(token)
    return info.value


TEAM_CLAIMS = {"aud": "trioproxy", "client_id": "team-a"}


# ---- good tokens -------------------------------------------------------------------------------

async def test_a_valid_rs256_team_token(idp, http):
    identity = await authenticator(idp, http).authenticate(KEY.token(TEAM_CLAIMS, customer="c9"))
    assert identity.role is Role.TEAM
    assert identity.team_id == "team-a"
    assert identity.routes == ("openai_routes", "info_routes")
    assert identity.subject == "user-1"
    assert idp.hits == 1


@pytest.mark.parametrize("alg", ["ES256", "PS256"])
async def test_es256_and_ps256_tokens(alg, http):
    key = SigningKey("k-" + alg, alg=alg)
    with JWKSServer(key) as server:
        identity = await authenticator(server, http).authenticate(key.token(TEAM_CLAIMS))
    assert identity.team_id == "team-a"


@pytest.mark.parametrize("scope", ["openid litellm_proxy_admin profile", ["openid", "litellm_proxy_admin"]])
async def test_admin_scope_as_string_or_list(idp, http, scope):
    identity = await authenticator(idp, http).authenticate(KEY.token({"aud": "trioproxy", "scope": scope}))
    assert identity.role is Role.PROXY_ADMIN
    assert identity.routes == ("management_routes", "spend_tracking_routes", "global_spend_tracking_routes",
                               "info_routes")


async def test_identity_fields_from_configured_and_nested_claims(idp, http):
    auth = authenticator(idp, http, team_id_jwt_field="realm.team", user_id_jwt_field="sub",
                         end_user_id_jwt_field="customer_id", org_id_jwt_field="org",
                         team_ids_jwt_field="groups", user_id_upsert=True)
    identity = await auth.authenticate(KEY.token(
        {"aud": "trioproxy", "realm": {"team": "team-b"}, "customer_id": "cust-1", "org": 7,
         "groups": ["team-b", "team-c"]}))
    assert (identity.role, identity.team_id, identity.user_id, identity.end_user_id, identity.org_id) == \
        (Role.TEAM, "team-b", "user-1", "cust-1", "7")
    assert identity.team_ids == ("team-b", "team-c") and identity.user_id_upsert is True


async def test_a_user_token_without_team_field_configured(idp, http):
    auth = authenticator(idp, http, team_id_jwt_field=None, user_id_jwt_field="sub")
    identity = await auth.authenticate(KEY.token({"aud": "trioproxy"}))
    assert identity.role is Role.INTERNAL_USER and identity.routes is None and identity.user_id == "user-1"


async def test_a_token_without_team_user_or_admin_scope_gets_public_routes(idp, http):
    auth = authenticator(idp, http, team_id_jwt_field=None)
    identity = await auth.authenticate(KEY.token({"aud": "trioproxy"}))
    assert identity.role is None and identity.routes == ("public_routes",)


async def test_an_oidc_discovery_url_works(idp, http):
    identity = await authenticator(idp.discovery_url, http).authenticate(KEY.token(TEAM_CLAIMS))
    assert identity.team_id == "team-a"


async def test_several_jwks_urls_comma_separated(http):
    other = SigningKey("k2", alg="ES256")
    with JWKSServer(KEY) as first, JWKSServer(other) as second:
        auth = authenticator(f"{first.url}, {second.url}", http)
        assert (await auth.authenticate(KEY.token(TEAM_CLAIMS))).team_id == "team-a"
        assert (await auth.authenticate(other.token(TEAM_CLAIMS))).team_id == "team-a"


async def test_without_jwt_audience_aud_is_not_checked(idp, http):
    auth = authenticator(idp, http, audience=None)
    assert (await auth.authenticate(KEY.token({"client_id": "t", "aud": "someone-else"}))).team_id == "t"


# ---- refused tokens ----------------------------------------------------------------------------

async def test_expired(idp, http):
    err = await refused(authenticator(idp, http), KEY.token(TEAM_CLAIMS, lifetime=-120))
    assert err.status_code == 401 and err.message.startswith("Token Expired: the JWT expired at 20")
    assert error_body(err)["error"]["type"] == "auth_error"


async def test_not_yet_valid(idp, http):
    err = await refused(authenticator(idp, http), KEY.token(TEAM_CLAIMS, nbf=int(time.time()) + 600))
    assert err.message.startswith("Token not yet valid: the JWT is valid from 20")


async def test_leeway_accepts_small_clock_skew(idp, http):
    auth = authenticator(idp, http, leeway=300)
    assert (await auth.authenticate(KEY.token(TEAM_CLAIMS, lifetime=-60))).team_id == "team-a"


async def test_wrong_audience(idp, http):
    err = await refused(authenticator(idp, http), KEY.token({"client_id": "t", "aud": "another-app"}))
    assert err.message == "Invalid JWT token: its audience ('aud') is not JWT_AUDIENCE"


async def test_wrong_issuer(idp, http):
    settings = JWTAuthSettings.from_config({"enable_jwt_auth": True},
                                           {"JWT_PUBLIC_KEY_URL": idp.url, "JWT_ISSUER": "https://idp"})
    auth = JWTAuthenticator(settings, http_fetcher(http))
    assert (await auth.authenticate(KEY.token({"iss": "https://idp"}))).issuer == "https://idp"
    err = await refused(auth, KEY.token({"iss": "https://evil"}))
    assert err.message == "Invalid JWT token: its issuer ('iss') is not JWT_ISSUER"


async def test_signed_by_another_key_with_the_same_kid(idp, http):
    impostor = SigningKey("k1")
    err = await refused(authenticator(idp, http), impostor.token(TEAM_CLAIMS))
    assert err.message == "Invalid JWT token: signature verification failed"


async def test_unknown_kid_refetches_once_then_fails(idp, http):
    auth = authenticator(idp, http)
    await auth.authenticate(KEY.token(TEAM_CLAIMS))
    assert idp.hits == 1
    err = await refused(auth, KEY.token(TEAM_CLAIMS, kid="rotated-away"))
    assert err.message == "Invalid JWT token: no public key with kid 'rotated-away' at JWT_PUBLIC_KEY_URL"
    assert idp.hits == 2
    await refused(auth, KEY.token(TEAM_CLAIMS, kid="another-unknown"))  # within the refetch interval
    assert idp.hits == 2


async def test_header_text_is_never_echoed_raw(idp, http):
    err = await refused(authenticator(idp, http), KEY.token(TEAM_CLAIMS, kid="evil\nline"))
    assert "kid 'evil?line'" in err.message
    err = await refused(authenticator(idp, http), _unsigned({"alg": "x\ny"}, {}))
    assert "algorithm 'x?y'" in err.message


async def test_a_rotated_key_is_picked_up_through_the_unknown_kid_refetch(idp, http):
    auth = authenticator(idp, http)
    await auth.authenticate(KEY.token(TEAM_CLAIMS))
    new = SigningKey("k-new")
    idp.document = {"keys": [KEY.jwk, new.jwk]}
    assert (await auth.authenticate(new.token(TEAM_CLAIMS))).team_id == "team-a"
    assert idp.hits == 2


def _unsigned(header: dict, claims: dict) -> str:
    encode = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{encode(header)}.{encode(claims)}."


async def test_alg_none_is_refused_without_touching_the_jwks(idp, http):
    token = _unsigned({"alg": "none", "kid": "k1"}, {**TEAM_CLAIMS, "exp": int(time.time()) + 60})
    err = await refused(authenticator(idp, http), token)
    assert err.message == "Invalid JWT token: algorithm 'none' is not accepted (only RS256, PS256, ES256)"
    assert idp.hits == 0


async def test_hs256_signed_with_the_public_key_is_refused(idp, http):
    # the classic confusion attack: HMAC with the IdP's public key (which anyone can download) as the secret
    pem = KEY.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    head = _unsigned({"alg": "HS256", "typ": "JWT", "kid": "k1"},
                     {**TEAM_CLAIMS, "client_id": "admin-team", "scope": "litellm_proxy_admin",
                      "exp": int(time.time()) + 60})[:-1]
    signature = base64.urlsafe_b64encode(hmac.new(pem, head.encode(), hashlib.sha256).digest()).rstrip(b"=")
    err = await refused(authenticator(idp, http), f"{head}.{signature.decode()}")
    assert "algorithm 'HS256' is not accepted" in err.message
    assert idp.hits == 0


async def test_an_rsa_key_cannot_verify_an_es256_token(idp, http):
    token = SigningKey("k1", alg="ES256").token(TEAM_CLAIMS)   # same kid as our RSA key
    err = await refused(authenticator(idp, http), token)
    assert err.message == "Invalid JWT token: the key with kid 'k1' is a RSA key; it cannot verify ES256"


async def test_missing_team_claim(idp, http):
    err = await refused(authenticator(idp, http), KEY.token({"aud": "trioproxy"}))
    assert err.message == "No team id found in token. Field checked in jwt token - 'client_id'"


async def test_missing_exp(idp, http):
    token = KEY.token(TEAM_CLAIMS, lifetime=0)
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    del payload["exp"]
    import jwt as pyjwt
    err = await refused(authenticator(idp, http), pyjwt.encode(payload, KEY.private, "RS256", {"kid": "k1"}))
    assert err.message == "Invalid JWT token: no 'exp' claim"


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.%%%.x", "x" * 50 + ".y.z"])
async def test_malformed_tokens(idp, http, token):
    err = await refused(authenticator(idp, http), token)
    assert err.status_code == 401 and err.message.startswith("Invalid JWT token: malformed")
    assert idp.hits == 0


async def test_scope_of_another_type_is_refused(idp, http):
    err = await refused(authenticator(idp, http), KEY.token({**TEAM_CLAIMS, "scope": 42}))
    assert "'scope' claim must be a space-separated string or a list" in err.message


async def test_email_domain_restriction(idp, http):
    auth = authenticator(idp, http, team_id_jwt_field=None, user_email_jwt_field="email",
                         user_allowed_email_domain="my-co.com")
    assert (await auth.authenticate(KEY.token({"aud": "trioproxy", "email": "a@my-co.com"}))).role is Role.INTERNAL_USER
    err = await refused(auth, KEY.token({"aud": "trioproxy", "email": "a@evil.com"}), AccessDenied)
    assert err.message == "Email domain not allowed. User email: a@evil.com. Allowed domain: my-co.com"


async def test_jwks_down_with_nothing_cached_is_a_503(idp, http, caplog):
    idp.status = 500
    err = await refused(authenticator(idp, http), KEY.token(TEAM_CLAIMS), AuthProviderUnavailable)
    assert err.status_code == 503
    assert error_body(err)["error"]["type"] == "auth_provider_unavailable"
    # the reason (with the JWKS URL) goes to the log only: the client gets a generic message
    assert "answered HTTP 500" not in err.message and "http" not in err.message
    assert "answered HTTP 500" in caplog.text


# ---- concurrency and the verified-token cache ----------------------------------------------------

async def test_concurrent_first_requests_share_one_fetch(idp, http):
    auth = authenticator(idp, http)
    results = []

    async def one():
        results.append(await auth.authenticate(KEY.token(TEAM_CLAIMS)))

    async with trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(one)
    assert len(results) == 10 and idp.hits == 1


async def test_a_flood_of_random_kids_costs_one_refetch(idp, http):
    auth = authenticator(idp, http)
    await auth.authenticate(KEY.token(TEAM_CLAIMS))
    failures = []

    async def one(i):
        try:
            await auth.authenticate(KEY.token(TEAM_CLAIMS, kid=f"random-{i}"))
        except AccessUnauthenticated as exc:
            failures.append(exc)

    async with trio.open_nursery() as nursery:
        for i in range(50):
            nursery.start_soon(one, i)
    assert len(failures) == 50 and idp.hits == 2


async def test_a_verified_token_is_not_verified_again(idp, http, monkeypatch):
    auth = authenticator(idp, http)
    calls = []
    real = jwt_module.pyjwt.decode
    monkeypatch.setattr(jwt_module.pyjwt, "decode", lambda *a, **k: calls.append(1) or real(*a, **k))
    token = KEY.token(TEAM_CLAIMS)
    first = await auth.authenticate(token)
    assert await auth.authenticate(token) is first
    assert len(calls) == 1


async def test_a_remembered_token_is_verified_again_once_our_clock_passes_its_exp(idp, http, monkeypatch):
    now = [time.time()]
    auth = JWTAuthenticator(settings_for(idp.url), http_fetcher(http), wall_clock=lambda: now[0])
    calls = []
    real = jwt_module.pyjwt.decode
    monkeypatch.setattr(jwt_module.pyjwt, "decode", lambda *a, **k: calls.append(1) or real(*a, **k))
    token = KEY.token(TEAM_CLAIMS, lifetime=30)
    await auth.authenticate(token)
    await auth.authenticate(token)
    assert len(calls) == 1
    now[0] += 31
    await auth.authenticate(token)  # not from the cache (PyJWT, on the real clock, still accepts it)
    assert len(calls) == 2


# ---- routes for JWT callers -------------------------------------------------------------------

async def test_jwt_callers_through_authorize(idp, http):
    rules = RouteRules.from_settings({})
    settings = settings_for(idp.url)
    grants = settings.route_grants(rules)
    auth = JWTAuthenticator(settings, http_fetcher(http))
    team = caller_for_jwt(await auth.authenticate(KEY.token(TEAM_CLAIMS)), grants)
    authorize(team, "/v1/chat/completions", "POST", rules)
    with pytest.raises(AccessDenied, match="Team not allowed to access this route. Route=/key/generate"):
        authorize(team, "/key/generate", "POST", rules)
    admin = caller_for_jwt(await auth.authenticate(KEY.token({"aud": "trioproxy", "scope": "litellm_proxy_admin"})),
                           grants)
    authorize(admin, "/team/new", "POST", rules)
    with pytest.raises(AccessDenied, match="Admin not allowed"):
        authorize(admin, "/chat/completions", "POST", rules)


def test_an_internal_user_token_takes_the_stored_users_role():
    rules = RouteRules.from_settings({})
    settings = JWTAuthSettings.from_config({"enable_jwt_auth": True, "litellm_jwtauth": {"user_id_jwt_field": "sub"}},
                                           {"JWT_PUBLIC_KEY_URL": "https://idp/jwks"})
    identity = jwt_module.identity_from_claims({"sub": "u1", "exp": 1}, settings)
    caller = caller_for_jwt(identity, settings.route_grants(rules), user_role=Role.PROXY_ADMIN_VIEWER)
    authorize(caller, "/global/spend", "GET", rules)
    with pytest.raises(AccessDenied, match="role= proxy_admin_viewer"):
        authorize(caller, "/team/new", "POST", rules)


# ---- recognising a JWT without JWT auth ---------------------------------------------------------

def test_looks_like_jwt():
    assert looks_like_jwt(KEY.token(TEAM_CLAIMS))
    assert looks_like_jwt(_unsigned({"alg": "none"}, {}))
    for not_a_jwt in ("sk-1234", "sk-abc.def.ghi", "a.b.c", "", None, "e30.e30.x"):  # e30 = "{}": no alg
        assert not looks_like_jwt(not_a_jwt)


def test_a_jwt_without_enable_jwt_auth_is_reported_as_such():
    err = jwt_not_enabled_error()
    assert err.status_code == 401
    assert "JWT auth is off" in err.message and "general_settings.enable_jwt_auth: true" in err.message


# ---- settings ---------------------------------------------------------------------------------

def test_settings_defaults_are_litellms():
    settings = JWTAuthSettings.from_config({"enable_jwt_auth": True}, {"JWT_PUBLIC_KEY_URL": "https://idp/jwks"})
    assert settings.admin_jwt_scope == "litellm_proxy_admin"
    assert settings.team_allowed_routes == ("openai_routes", "info_routes")
    assert settings.public_key_ttl == 600 and settings.audience is None
    assert JWTAuthSettings.from_config({}, {"JWT_PUBLIC_KEY_URL": "x"}) is None


def test_settings_problems_are_reported_at_once():
    with pytest.raises(AccessConfigError) as info:
        JWTAuthSettings.from_config({"enable_jwt_auth": True, "litellm_jwtauth": {
            "team_id_jwt_feild": "client_id", "enforce_rbac": True, "public_key_ttl": -1, "user_id_upsert": "yes"}},
            {"JWT_PUBLIC_KEY_URL": "ftp://idp/jwks"})
    assert info.value.problems == [
        "general_settings.litellm_jwtauth.team_id_jwt_feild: unknown setting; did you mean 'team_id_jwt_field'?",
        "general_settings.litellm_jwtauth.enforce_rbac: a LiteLLM setting trioproxy does not implement; remove it "
        "(trioproxy refuses rather than ignores settings that restrict access)",
        "general_settings.litellm_jwtauth.public_key_ttl: must be a number of seconds >= 0, got -1",
        "general_settings.litellm_jwtauth.user_id_upsert: must be true or false, got 'yes'",
        "JWT_PUBLIC_KEY_URL: 'ftp://idp/jwks' is not an http(s) URL",
    ]


def test_jwt_auth_without_a_key_url_is_a_startup_error():
    with pytest.raises(AccessConfigError, match="JWT_PUBLIC_KEY_URL .* is not set"):
        JWTAuthSettings.from_config({"enable_jwt_auth": True}, {})


def test_route_grants_with_a_bad_route_name_fail_at_startup():
    settings = JWTAuthSettings.from_config(
        {"enable_jwt_auth": True, "litellm_jwtauth": {"team_allowed_routes": ["openai_rotes"]}},
        {"JWT_PUBLIC_KEY_URL": "https://idp/jwks"})
    with pytest.raises(AccessConfigError, match=r"team_allowed_routes\[0\]: 'openai_rotes'"):
        settings.route_grants(RouteRules.from_settings({}))


# ---- the key cache in virtual time --------------------------------------------------------------

class FakeIdP:
    """An in-memory fetcher: ``document`` or an exception, counting calls, optionally never answering."""

    def __init__(self, *keys: SigningKey) -> None:
        self.document = {"keys": [k.jwk for k in keys]}
        self.error: Exception | None = None
        self.hang = False
        self.calls = 0

    async def __call__(self, url: str):
        self.calls += 1
        if self.hang:
            await trio.sleep_forever()
        if self.error is not None:
            raise self.error
        return self.document


def virtual(fake: FakeIdP, **jwtauth) -> JWTAuthenticator:
    return JWTAuthenticator(settings_for("https://idp.example/jwks", **jwtauth), fake, fetch_timeout=10)


async def test_keys_are_refetched_after_public_key_ttl(autojump_clock):
    fake = FakeIdP(KEY)
    auth = virtual(fake, public_key_ttl=600)
    await auth.keys.key_for("k1", "RS256")
    await trio.sleep(599)
    await auth.keys.key_for("k1", "RS256")
    assert fake.calls == 1
    await trio.sleep(1)
    await auth.keys.key_for("k1", "RS256")
    assert fake.calls == 2


async def test_stale_keys_serve_while_the_idp_is_down_then_503(autojump_clock):
    fake = FakeIdP(KEY)
    auth = virtual(fake, public_key_ttl=600, public_key_stale_ttl=300, public_key_refetch_interval=30)
    await auth.keys.key_for("k1", "RS256")                       # t=0, fresh until 600, usable until 900
    fake.error = RuntimeError("connection refused")
    await trio.sleep(600)
    await auth.keys.key_for("k1", "RS256")                       # refresh fails, stale key served
    assert fake.calls == 2
    await trio.sleep(29)
    await auth.keys.key_for("k1", "RS256")                       # no retry before the interval
    assert fake.calls == 2
    await trio.sleep(1)
    await auth.keys.key_for("k1", "RS256")                       # retried at 630, still stale-served
    assert fake.calls == 3
    await trio.sleep(270)                                        # t=900: stale copy no longer usable
    with pytest.raises(AuthProviderUnavailable, match="Please retry shortly"):
        await auth.keys.key_for("k1", "RS256")
    fake.error = None
    await trio.sleep(30)
    await auth.keys.key_for("k1", "RS256")                       # the IdP is back
    assert fake.calls == 5


async def test_stale_ttl_zero_fails_closed_at_once(autojump_clock):
    fake = FakeIdP(KEY)
    auth = virtual(fake, public_key_ttl=600, public_key_stale_ttl=0)
    await auth.keys.key_for("k1", "RS256")
    fake.error = RuntimeError("down")
    await trio.sleep(600)
    with pytest.raises(AuthProviderUnavailable):
        await auth.keys.key_for("k1", "RS256")


async def test_a_hanging_idp_times_out(autojump_clock):
    fake = FakeIdP(KEY)
    fake.hang = True
    auth = virtual(fake)
    start = trio.current_time()
    with pytest.raises(AuthProviderUnavailable, match="Please retry shortly"):
        await auth.keys.key_for("k1", "RS256")
    assert trio.current_time() - start == 10


async def test_unknown_kids_refetch_at_most_once_per_interval(autojump_clock):
    fake = FakeIdP(KEY)
    auth = virtual(fake, public_key_refetch_interval=30)
    await auth.keys.key_for("k1", "RS256")
    for _ in range(5):
        with pytest.raises(AccessUnauthenticated):
            await auth.keys.key_for("nope", "RS256")
    assert fake.calls == 2
    await trio.sleep(30)
    with pytest.raises(AccessUnauthenticated):
        await auth.keys.key_for("nope", "RS256")
    assert fake.calls == 3


async def test_hmac_keys_in_a_jwks_are_never_used(autojump_clock):
    fake = FakeIdP()
    fake.document = {"keys": [{"kty": "oct", "kid": "k1", "k": base64.urlsafe_b64encode(b"secret").decode()},
                              {**KEY.jwk, "kid": "enc", "use": "enc"}]}
    auth = virtual(fake)
    with pytest.raises(AuthProviderUnavailable, match="Please retry shortly"):
        await auth.keys.key_for("k1", "RS256")


async def test_a_token_without_kid_uses_the_only_key(autojump_clock):
    fake = FakeIdP(SigningKey(None))
    auth = virtual(fake)
    assert await auth.keys.key_for(None, "RS256") is not None
    fake.document = {"keys": [SigningKey("a").jwk, SigningKey("b").jwk]}
    auth = virtual(fake)
    with pytest.raises(AccessUnauthenticated, match="no 'kid' header and 2 keys"):
        await auth.keys.key_for(None, "RS256")


async def test_the_verified_cache_is_dropped_when_the_keys_change(autojump_clock):
    fake = FakeIdP(KEY)
    auth = virtual(fake)
    token = KEY.token(TEAM_CLAIMS)
    await auth.authenticate(token)
    generation = auth.keys.generation
    new = SigningKey("k2")
    fake.document = {"keys": [new.jwk]}               # the IdP withdrew k1
    await trio.sleep(1)
    await auth.authenticate(new.token(TEAM_CLAIMS))   # unknown kid: refetch, the key set changed
    assert auth.keys.generation == generation + 1
    with pytest.raises(AccessUnauthenticated, match="no public key with kid 'k1'"):
        await auth.authenticate(token)                # remembered 1 s ago, but verified with a withdrawn key
