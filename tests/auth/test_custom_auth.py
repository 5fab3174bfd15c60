"""``general_settings.custom_auth`` in process: what each answer of the function means (auth/custom_auth.py),
the ``Request`` it receives, and the gate's route decision for the caller it returns.

End to end (a real ``trioproxy run`` with LiteLLM's own custom-auth files): tests/e2e/test_custom_auth_e2e.py.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

from trioproxy import LitellmUserRoles, ProxyException, Request, UserAPIKeyAuth
from trioproxy.access import IPPolicy, RouteRules
from trioproxy.access.auth_failures import FailedAuthLimiter, TooManyFailedAuthentications
from trioproxy.auth import Authenticator, Identity, hash_key
from trioproxy.auth.custom_auth import CustomAuth, CustomAuthSettings, check_function
from trioproxy.errors import (
    AuthenticationError,
    InternalServerError,
    ProxyError,
    ServiceUnavailableError,
)
from trioproxy.http.gate import AccessGate
from trioproxy.store.custom_auth_records import record_for_custom_auth

KEY = "sk-presented-key-0123456789"
MASTER = "sk-master-unit-0123456789"


def _auth(function: Any, mode: str = "on", timeout: float = 10.0) -> CustomAuth:
    return CustomAuth(function, "tests.fn", CustomAuthSettings(mode=mode, timeout=timeout),  # type: ignore[arg-type]
                      record_for_custom_auth)


def _request(**kw: Any) -> Request:
    return Request("POST", "/v1/chat/completions", {"Authorization": f"Bearer {KEY}"}, **kw)


async def test_a_returned_caller_is_the_identity_with_its_key_hashed() -> None:
    async def fn(request: Request, api_key: str) -> UserAPIKeyAuth:
        return UserAPIKeyAuth(api_key=api_key, user_id="u1", team_id="t1", models=["m1"], rpm_limit=3,
                              max_budget=2.5, user_role=LitellmUserRoles.INTERNAL_USER)

    who = await _auth(fn).decide(_request(), KEY)
    assert isinstance(who, Identity) and who.kind == "custom_auth"
    assert who.token == hash_key(KEY) and who.record.token == hash_key(KEY)
    assert who.record.models == ("m1",) and who.record.rpm_limit == 3 and who.record.max_budget == 2_500_000
    assert who.user_role == "internal_user" and who.user_id == "u1" and who.team_id == "t1"
    user = who.user_api_key_auth()
    assert user.api_key == hash_key(KEY) and KEY not in repr(user)   # never the clear key
    user.models.append("changed")                                       # a hook's change stays its own
    assert who.user_api_key_auth().models == ["m1"]


async def test_a_dict_answer_and_a_hash_are_taken_as_they_are() -> None:
    token = hash_key("other")

    async def fn(request: Request, api_key: str) -> dict[str, Any]:
        return {"api_key": token, "user_id": "u2", "some_new_litellm_field": 1}

    who = await _auth(fn).decide(_request(), KEY)
    assert isinstance(who, Identity) and who.token == token
    assert who.user_api_key_auth().extra == {"some_new_litellm_field": 1}


async def test_a_string_answer_is_a_key_for_the_proxys_own_auth() -> None:
    async def fn(request: Request, api_key: str) -> str:
        return "sk-mapped"

    assert await _auth(fn).decide(_request(), KEY) == "sk-mapped"


async def test_an_exception_is_a_401_with_the_key_masked_in_mode_on_and_falls_through_in_auto() -> None:
    async def fn(request: Request, api_key: str) -> UserAPIKeyAuth:
        raise ValueError(f"no such key {api_key}")

    with pytest.raises(AuthenticationError) as caught:
        await _auth(fn).decide(_request(), KEY)
    assert caught.value.status_code == 401 and KEY not in caught.value.message
    assert caught.value.message.startswith("Authentication Error, no such key sk-...")
    assert await _auth(fn, "auto").decide(_request(), KEY) is None


async def test_a_proxy_exception_keeps_its_status_and_envelope() -> None:
    async def fn(request: Request, api_key: str) -> UserAPIKeyAuth:
        raise ProxyException(message=f"Invalid API key {api_key}", type="invalid_request_error", param="api_key",
                             code=403)

    with pytest.raises(ProxyError) as caught:
        await _auth(fn).decide(_request(), KEY)
    assert caught.value.status_code == 403 and caught.value.param == "api_key" and KEY not in caught.value.message


async def test_a_wrong_answer_is_a_500_and_none_a_401() -> None:
    async def number(request: Request, api_key: str) -> int:
        return 42

    async def nothing(request: Request, api_key: str) -> None:
        return None

    with pytest.raises(InternalServerError) as caught:
        await _auth(number).decide(_request(), KEY)
    assert caught.value.code == "custom_auth_error"
    with pytest.raises(AuthenticationError):
        await _auth(nothing).decide(_request(), KEY)
    assert await _auth(nothing, "auto").decide(_request(), KEY) is None


async def test_a_function_that_never_answers_is_a_503_at_its_timeout(autojump_clock: trio.testing.MockClock) -> None:
    async def slow(request: Request, api_key: str) -> UserAPIKeyAuth:
        await trio.sleep_forever()
        raise AssertionError

    start = trio.current_time()
    with pytest.raises(ServiceUnavailableError) as caught:
        await _auth(slow, timeout=2.0).decide(_request(), KEY)
    assert caught.value.code == "custom_auth_timeout" and trio.current_time() - start == pytest.approx(2.0)


async def test_an_expired_or_blocked_answer_is_a_401() -> None:
    async def expired(request: Request, api_key: str) -> UserAPIKeyAuth:
        return UserAPIKeyAuth(api_key=api_key, expires="2001-01-01T00:00:00+00:00")

    async def blocked(request: Request, api_key: str) -> UserAPIKeyAuth:
        return UserAPIKeyAuth(api_key=api_key, blocked=True)

    for fn in (expired, blocked):
        with pytest.raises(AuthenticationError):
            await _auth(fn).decide(_request(), KEY)


def test_only_async_functions_are_accepted() -> None:
    def sync(request: Any, api_key: str) -> None: ...

    async def fine(request: Any, api_key: str) -> None: ...

    assert "must be an async function" in (check_function(sync, "m.sync") or "")
    assert check_function(fine, "m.fine") is None
    assert "not a function" in (check_function(3, "m.three") or "")


async def test_the_request_offers_what_custom_auth_files_read() -> None:
    reads: list[int] = []

    async def body() -> bytes:
        reads.append(1)
        return b'{"model": "m1"}'

    request = Request("post", "/v1/chat/completions", {"X-Tenant": "acme", "authorization": "Bearer k"},
                      query_string=b"a=1&b=", client_host="10.0.0.7", body=body)
    assert request.method == "POST" and request.url.path == "/v1/chat/completions" and str(request.url).endswith("?a=1&b=")
    assert request.headers["x-tenant"] == "acme" and request.headers.get("X-TENANT") == "acme"
    assert "k" not in repr(request.headers).replace("x-tenant", "")   # header values never in a repr
    assert request.query_params == {"a": "1", "b": ""} and request.client is not None
    assert request.client.host == "10.0.0.7"
    assert await request.json() == {"model": "m1"} and await request.body() == b'{"model": "m1"}'
    assert reads == [1]   # read once
    with pytest.raises(RuntimeError, match="not available to custom_auth"):
        await Request("POST", "/partner", {}).body()


def _gate(function: Any, mode: str = "on") -> AccessGate:
    rules = RouteRules.from_settings({})
    return AccessGate(IPPolicy.from_settings({}), rules, Authenticator(MASTER), custom_auth=_auth(function, mode))


async def test_the_gate_judges_the_returned_caller_by_the_route_rules() -> None:
    roles = {"k-admin": "proxy_admin", "k-user": "internal_user", "k-viewer": "proxy_admin_viewer", "k-plain": None}

    async def fn(request: Request, api_key: str) -> UserAPIKeyAuth:
        if api_key not in roles:
            raise ValueError("unknown")
        return UserAPIKeyAuth(api_key=api_key, user_id=api_key, user_role=roles[api_key],
                              allowed_routes=["/chat/completions"] if api_key == "k-plain" else [])

    gate = _gate(fn)

    async def status(key: str | None, path: str, method: str = "POST") -> int:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        try:
            await gate.authorize(headers, path, method, "127.0.0.1")
        except ProxyError as err:
            return err.status_code
        return 200

    assert await status("k-admin", "/key/generate") == 200
    assert await status("k-user", "/user/new") == 403                        # admin only
    assert await status("k-user", "/key/generate") == 200                    # self service
    assert await status("k-viewer", "/v1/chat/completions") == 403           # viewers may not spend
    assert await status("k-viewer", "/key/list", "GET") == 200
    assert await status("k-plain", "/v1/chat/completions") == 200            # /chat/completions covers /v1
    assert await status("k-plain", "/v1/embeddings") == 403                  # its allowed_routes
    assert await status("k-admin", "/global/spend/reset") == 403             # master key only
    assert await status("nope", "/v1/chat/completions") == 401
    assert await status(None, "/v1/chat/completions") == 401
    assert await status(None, "/health/liveliness", "GET") == 200            # public: not asked
    assert await status(MASTER, "/v1/chat/completions") == 401               # mode on: the function alone decides


async def test_auto_mode_falls_back_to_the_master_key_and_maps_keys() -> None:
    async def fn(request: Request, api_key: str) -> str:
        if api_key.startswith("my-custom-key"):
            return MASTER
        raise ValueError("Invalid API key")

    gate = _gate(fn, "auto")
    assert (await gate.authorize({"authorization": "Bearer my-custom-key-1"}, "/key/generate", "POST", None)).is_master
    assert (await gate.authorize({"authorization": f"Bearer {MASTER}"}, "/key/generate", "POST", None)).is_master
    with pytest.raises(ProxyError) as caught:
        await gate.authorize({"authorization": "Bearer sk-wrong-0000000000"}, "/key/generate", "POST", None)
    assert caught.value.status_code == 401


async def test_custom_auth_refusals_count_as_failed_authentications(autojump_clock: Any) -> None:
    """A key custom_auth refuses (401) counts toward the failed-auth limit of its address; a
    locked-out address gets the 429 without the function being asked again."""
    asked: list[str] = []

    async def fn(request: Request, api_key: str) -> UserAPIKeyAuth:
        asked.append(api_key)
        if api_key != "k-good":
            raise ValueError("unknown key")
        return UserAPIKeyAuth(api_key=api_key, user_id="u1")

    gate = AccessGate(IPPolicy.from_settings({}), RouteRules.from_settings({}), Authenticator(MASTER),
                      FailedAuthLimiter(3, 60.0), custom_auth=_auth(fn, "on"))
    headers = {"authorization": "Bearer k-bad"}
    for _ in range(3):
        with pytest.raises(ProxyError) as refused:
            await gate.authorize(headers, "/v1/chat/completions", "POST", "203.0.113.9")
        assert refused.value.status_code == 401
    with pytest.raises(TooManyFailedAuthentications):
        await gate.authorize({"authorization": "Bearer k-good"}, "/v1/chat/completions", "POST", "203.0.113.9")
    assert asked == ["k-bad"] * 3
    # another address is unaffected
    assert (await gate.authorize({"authorization": "Bearer k-good"}, "/v1/chat/completions", "POST",
                                 "198.51.100.2")).user_id == "u1"
