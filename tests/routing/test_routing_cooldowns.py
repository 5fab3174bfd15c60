"""``Cooldowns``: one test per row of ``cooldowns.py``'s table, in virtual time."""

from __future__ import annotations

import pytest

from trioproxy.upstream.routing import Cooldowns, CooldownSettings, ErrorKind

from .routing_helpers import FakeClock


def cooldowns(**settings):
    clock = FakeClock()
    return Cooldowns(CooldownSettings(**settings), clock), clock


@pytest.mark.parametrize("kind", [ErrorKind.RATE_LIMITED, ErrorKind.AUTH, ErrorKind.PAYMENT])
def test_rate_limit_credentials_and_credit_cool_down_at_once(kind):
    c, _ = cooldowns()
    assert c.record_failure("d", kind) is True
    assert c.is_cooling("d") and c.remaining("d") == 5.0


@pytest.mark.parametrize("kind", [ErrorKind.CONNECTION, ErrorKind.TIMEOUT, ErrorKind.SERVER, ErrorKind.NOT_FOUND])
def test_other_deployment_failures_cool_down_past_allowed_fails_in_a_minute(kind):
    c, clock = cooldowns()
    for _ in range(3):
        assert c.record_failure("d", kind) is False
        clock.advance(10)
    assert c.record_failure("d", kind) is True        # the 4th within 60 s: more than allowed_fails=3
    assert c.is_cooling("d")


def test_failures_older_than_the_window_do_not_count():
    c, clock = cooldowns()
    for _ in range(3):
        c.record_failure("d", ErrorKind.SERVER)
        clock.advance(30)                              # failures at 0, 30, 60; the 4th at 90
    assert c.record_failure("d", ErrorKind.SERVER) is False
    assert not c.is_cooling("d")


@pytest.mark.parametrize("kind", [ErrorKind.CONTEXT_WINDOW, ErrorKind.CONTENT_POLICY, ErrorKind.BAD_REQUEST,
                                  ErrorKind.OTHER, None])
def test_the_requests_own_faults_and_abandoned_attempts_never_count(kind):
    c, _ = cooldowns(allowed_fails=0)
    for _ in range(10):
        assert c.record_failure("d", kind) is False
    assert not c.is_cooling("d")


def test_a_cooldown_lasts_cooldown_time_then_starts_a_clean_slate():
    c, clock = cooldowns(allowed_fails=1, cooldown_time=30)
    c.record_failure("d", ErrorKind.SERVER)
    c.record_failure("d", ErrorKind.SERVER)
    assert c.is_cooling("d")
    clock.advance(29.9)
    assert c.is_cooling("d") and c.remaining("d") == pytest.approx(0.1)
    clock.advance(0.1)
    assert not c.is_cooling("d")
    assert c.record_failure("d", ErrorKind.SERVER) is False   # earlier failures were forgotten


def test_a_failure_during_a_cooldown_does_not_extend_it():
    c, clock = cooldowns()
    c.record_failure("d", ErrorKind.RATE_LIMITED)
    clock.advance(4)
    assert c.record_failure("d", ErrorKind.RATE_LIMITED) is False
    clock.advance(1)
    assert not c.is_cooling("d")


def test_deployment_cooldown_time_overrides_and_zero_never_cools():
    c, _ = cooldowns()
    c.record_failure("a", ErrorKind.RATE_LIMITED, cooldown_time=60)
    assert c.remaining("a") == 60
    assert c.record_failure("b", ErrorKind.RATE_LIMITED, cooldown_time=0) is False
    assert not c.is_cooling("b")


def test_allowed_fails_zero_cools_on_the_first_counted_failure():
    c, _ = cooldowns(allowed_fails=0)
    assert c.record_failure("d", ErrorKind.CONNECTION) is True


def test_disable_cooldowns():
    c, _ = cooldowns(disabled=True)
    assert c.record_failure("d", ErrorKind.RATE_LIMITED) is False
    assert c.cooling() == {}


def test_deployments_cool_down_independently():
    c, _ = cooldowns()
    c.record_failure("a", ErrorKind.RATE_LIMITED)
    assert c.is_cooling("a") and not c.is_cooling("b")
    assert c.cooling() == {"a": 5.0}


def test_records_of_keys_that_stopped_failing_are_dropped(monkeypatch):
    """A wildcard makes a key per model a client names: stale records must not pile up."""
    from trioproxy.upstream.routing import cooldowns as module

    monkeypatch.setattr(module, "PRUNE_AT", 10)
    clock = FakeClock()
    c = Cooldowns(CooldownSettings(allowed_fails=3), clock)
    for n in range(10):
        c.record_failure(f"g:model-{n}", ErrorKind.NOT_FOUND)
    clock.advance(61)
    c.record_failure("g:recent-a", ErrorKind.NOT_FOUND)    # the 11th record: the stale ten go
    assert set(c._failures) == {"g:recent-a"}
    c.record_failure("g:recent-a", ErrorKind.NOT_FOUND)
    c.record_failure("g:recent-a", ErrorKind.NOT_FOUND)
    assert not c.is_cooling("g:recent-a")                  # counting still works after a prune
    c.record_failure("g:recent-a", ErrorKind.NOT_FOUND)
    assert c.is_cooling("g:recent-a")
