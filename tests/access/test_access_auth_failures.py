"""Failed authentications limited per client address (``access/auth_failures.py``), in virtual time.

The limiter alone, then through the route decision (``AccessGate.authorize``) with a fake key
store that counts its lookups: a locked-out address gets the 429 before any lookup.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

from trioproxy.access import IPPolicy, RouteRules
from trioproxy.access.auth_failures import (
    FailedAuthLimiter,
    TooManyFailedAuthentications,
    bucket_of,
)
from trioproxy.auth import Authenticator
from trioproxy.errors import AuthenticationError
from trioproxy.http.gate import AccessGate
from trioproxy.store.key_cache import BlockedKeyError, ExpiredKeyError, InvalidKeyError

MASTER = "sk-master-1234"
A = "203.0.113.7"
B = "198.51.100.1"


class Keys:
    """A key store that refuses everything and counts the lookups it was asked for."""

    def __init__(self) -> None:
        self.lookups: list[str] = []

    async def authenticate(self, api_key: str) -> Any:
        self.lookups.append(api_key)
        if api_key == "sk-expired":
            raise ExpiredKeyError("Authentication Error - Expired Key.")
        if api_key == "sk-blocked":
            raise BlockedKeyError("Key is blocked.")
        raise InvalidKeyError("Authentication Error, Invalid proxy server token passed.")


def _gate(limiter: FailedAuthLimiter | None) -> tuple[AccessGate, Keys]:
    keys = Keys()
    return AccessGate(IPPolicy(), RouteRules.from_settings({}), Authenticator(MASTER, keys), limiter), keys


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def _chat(gate: AccessGate, key: str | None, address: str | None = A) -> Any:
    headers = _bearer(key) if key is not None else {}
    return await gate.authorize(headers, "/chat/completions", "POST", address)


# -- the limiter alone ---------------------------------------------------------------------------

async def test_sliding_window_locks_after_the_threshold_and_frees_when_the_oldest_leaves(autojump_clock: Any) -> None:
    limiter = FailedAuthLimiter(3, 60.0)
    assert not limiter.record_failure(A)
    await trio.sleep(10)
    assert not limiter.record_failure(A)
    assert limiter.retry_after(A) is None
    await trio.sleep(10)
    assert limiter.record_failure(A)                      # the third within 60 s locks
    assert limiter.retry_after(A) == pytest.approx(40.0)  # until the first (t=0) leaves the window
    assert limiter.retry_after(B) is None                 # another address is not affected
    await trio.sleep(40)
    assert limiter.retry_after(A) is None                 # one more guess allowed...
    assert limiter.record_failure(A)                      # ...and it locks again, until t=10 leaves
    assert limiter.retry_after(A) == pytest.approx(10.0)


async def test_failures_spread_wider_than_the_window_never_lock(autojump_clock: Any) -> None:
    limiter = FailedAuthLimiter(3, 60.0)
    for _ in range(20):
        assert not limiter.record_failure(A)
        await trio.sleep(31)
    assert limiter.retry_after(A) is None


def test_refusal_is_a_429_envelope_with_retry_after_rounded_up() -> None:
    limiter = FailedAuthLimiter(3, 60.0, clock=lambda: 0.0)
    refusal = limiter.refusal(A, 12.2)
    assert isinstance(refusal, TooManyFailedAuthentications)
    assert refusal.status_code == 429 and refusal.headers == {"retry-after": "13"}
    assert refusal.code == "too_many_failed_authentications"
    assert "Too many failed authentication attempts from 203.0.113.7: 3 within 60 s" in refusal.message
    assert "auth_rate_limit_max_failures_per_ip" in refusal.message
    assert limiter.refusal(A, 0.2).headers == {"retry-after": "1"}


def test_ipv6_is_counted_per_64_and_unknown_addresses_share_one_bucket() -> None:
    assert bucket_of("2001:db8:1:2::1") == bucket_of("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert bucket_of("2001:db8:1:3::1") != bucket_of("2001:db8:1:2::1")
    assert bucket_of(None) == bucket_of("") == "unknown"
    assert bucket_of(A) == A
    now = [0.0]
    limiter = FailedAuthLimiter(2, 60.0, clock=lambda: now[0])
    limiter.record_failure("2001:db8:1:2::1")
    assert limiter.record_failure("2001:db8:1:2::2")
    assert limiter.retry_after("2001:db8:1:2::3") is not None
    assert limiter.retry_after("2001:db8:1:3::1") is None


def test_memory_is_bounded_idle_addresses_go_first() -> None:
    now = [0.0]
    limiter = FailedAuthLimiter(2, 60.0, max_tracked=100, clock=lambda: now[0])
    for index in range(100):
        limiter.record_failure(f"10.0.0.{index}")
    assert len(limiter) == 100
    now[0] = 61.0                      # all of them idle: the next failure drops them
    limiter.record_failure(B)
    assert len(limiter) == 1
    now[0] = 62.0
    limiter.record_failure(A)
    limiter.record_failure(A)          # A locked
    for index in range(200):           # a flood of new addresses: the bound holds
        limiter.record_failure(f"192.0.2.{index % 250}-{index}")
    assert len(limiter) == 100
    assert limiter.retry_after(A) is None   # least recently failing dropped past the bound (documented)


def test_what_counts() -> None:
    limiter = FailedAuthLimiter(3, 60.0, not_counted=(ExpiredKeyError, BlockedKeyError))
    assert limiter.counts(InvalidKeyError("x"))
    assert limiter.counts(AuthenticationError("Invalid API key"))
    assert not limiter.counts(ExpiredKeyError("x"))
    assert not limiter.counts(BlockedKeyError("x"))
    assert not limiter.counts(limiter.refusal(A, 1.0))
    assert not limiter.counts(None)


def test_settings() -> None:
    default = FailedAuthLimiter.from_settings({})
    assert default is not None and (default.max_failures, default.window) == (60, 300.0)
    custom = FailedAuthLimiter.from_settings({"auth_rate_limit_max_failures_per_ip": 5,
                                              "auth_rate_limit_window_seconds": 30})
    assert custom is not None and (custom.max_failures, custom.window) == (5, 30.0)
    assert FailedAuthLimiter.from_settings({"auth_rate_limit_max_failures_per_ip": 0}) is None


# -- through the route decision ------------------------------------------------------------------

async def test_locked_out_address_gets_429_before_any_lookup(autojump_clock: Any) -> None:
    gate, keys = _gate(FailedAuthLimiter(3, 60.0))
    for _ in range(3):
        with pytest.raises(InvalidKeyError):
            await _chat(gate, "sk-guess")
    assert len(keys.lookups) == 3
    with pytest.raises(TooManyFailedAuthentications) as refused:
        await _chat(gate, "sk-guess-again")
    assert refused.value.headers["retry-after"] == "60"
    assert len(keys.lookups) == 3            # not looked up
    # the master key from the locked address is refused too: the 429 tells nothing about a key
    with pytest.raises(TooManyFailedAuthentications):
        await _chat(gate, MASTER)
    # other addresses, and public routes of the locked one, are unaffected
    assert (await _chat(gate, MASTER, B)).is_master
    assert (await gate.authorize(_bearer("sk-guess"), "/health/liveliness", "GET", A)) is not None
    # no credential is not a guess and gets its 401, not the 429
    with pytest.raises(AuthenticationError) as no_key:
        await _chat(gate, None)
    assert not isinstance(no_key.value, TooManyFailedAuthentications)
    await trio.sleep(60)
    with pytest.raises(InvalidKeyError):     # the window has passed: looked up again
        await _chat(gate, "sk-guess")
    assert len(keys.lookups) == 4


async def test_master_key_guesses_count_and_refused_429s_do_not(autojump_clock: Any) -> None:
    gate, keys = _gate(FailedAuthLimiter(2, 60.0))
    for _ in range(2):
        with pytest.raises(AuthenticationError):
            await _chat(gate, "sk-master-1235")
    for _ in range(50):                       # hammering while locked does not extend the lockout
        with pytest.raises(TooManyFailedAuthentications):
            await _chat(gate, "sk-master-1236")
    await trio.sleep(60)
    assert (await _chat(gate, MASTER)).is_master


async def test_success_neither_counts_nor_clears_and_real_keys_do_not_count(autojump_clock: Any) -> None:
    limiter = FailedAuthLimiter(3, 60.0, not_counted=(ExpiredKeyError, BlockedKeyError))
    gate, keys = _gate(limiter)
    for _ in range(10):
        with pytest.raises(ExpiredKeyError):
            await _chat(gate, "sk-expired")
        with pytest.raises(BlockedKeyError):
            await _chat(gate, "sk-blocked")
        assert (await _chat(gate, MASTER)).is_master
    assert limiter.retry_after(A) is None and len(limiter) == 0
    for _ in range(2):
        with pytest.raises(InvalidKeyError):
            await _chat(gate, "sk-guess")
        assert (await _chat(gate, MASTER)).is_master      # a success does not clear the count
    with pytest.raises(InvalidKeyError):
        await _chat(gate, "sk-guess")
    assert limiter.retry_after(A) is not None


async def test_bad_key_on_a_public_route_is_not_counted(autojump_clock: Any) -> None:
    limiter = FailedAuthLimiter(2, 60.0)
    gate, _ = _gate(limiter)
    for _ in range(10):
        await gate.authorize(_bearer("sk-stale"), "/health/liveliness", "GET", A)
    assert len(limiter) == 0


async def test_no_limiter_means_no_limit(autojump_clock: Any) -> None:
    gate, keys = _gate(None)
    for _ in range(100):
        with pytest.raises(InvalidKeyError):
            await _chat(gate, "sk-guess")
    assert len(keys.lookups) == 100


async def test_lockout_warning_names_the_address_never_the_key(autojump_clock: Any,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    gate, _ = _gate(FailedAuthLimiter(2, 60.0))
    with caplog.at_level("WARNING", logger="trioproxy.access"):
        for _ in range(2):
            with pytest.raises(AuthenticationError):
                await _chat(gate, "sk-secret-guess-777")
    assert "locked out 203.0.113.7 for failed authentications" in caplog.text
    assert "sk-secret-guess-777" not in caplog.text
