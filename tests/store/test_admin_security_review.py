"""Regression tests from the security review of the store and the admin operations.

Each test names the defect it pins: bad input that reached the database (or Python's datetime
arithmetic) and came back as an unhandled exception — a 500 — instead of a 400 naming the field;
a key's ``allowed_routes`` stored unchecked; a database password that survived redaction.
Every test runs on a real SQLite file and a real PostgreSQL (the ``admin`` fixture).
"""

from __future__ import annotations

import orjson
import pytest

from trioproxy.admin import AdminContext, audit, customers, keys, teams, users
from trioproxy.store.url import parse_database_url

from .admin_helpers import MASTER, VIEWER, error_of

# ---- durations: an overflow was a 500 ------------------------------------------------------------

@pytest.mark.parametrize("field, value", [
    ("duration", "99999999999d"),           # timedelta overflow (OverflowError)
    ("duration", "999999999mo"),            # year out of range (ValueError)
    ("budget_duration", "9" * 5000 + "s"),  # int() digit limit (ValueError outside InvalidDuration)
    ("duration", "١h"),                     # a non-ASCII digit is not a duration
])
async def test_a_huge_or_odd_duration_is_a_400_not_a_crash(admin: AdminContext, field: str, value: str) -> None:
    status, err = await error_of(keys.key_generate(admin, MASTER, {field: value}))
    assert status == 400 and err["param"] == field and "invalid duration" in err["message"]


async def test_a_huge_grace_period_is_a_400_not_a_crash(admin: AdminContext) -> None:
    made = await keys.key_generate(admin, MASTER, {})
    status, err = await error_of(keys.key_regenerate(admin, MASTER, {"key": made["key"],
                                                                      "grace_period": "99999999999w"}))
    assert status == 400 and err["param"] == "grace_period"


async def test_a_long_but_sane_duration_still_works(admin: AdminContext) -> None:
    made = await keys.key_generate(admin, MASTER, {"duration": "36500d", "budget_duration": "1200mo"})
    assert made["expires"] is not None and made["budget_duration"] == "1200mo"


# ---- integers beyond BIGINT: a 500 from the driver -------------------------------------------------

@pytest.mark.parametrize("value", [1e30, 2**63])
async def test_a_limit_beyond_bigint_is_a_400(admin: AdminContext, value: float) -> None:
    status, err = await error_of(keys.key_generate(admin, MASTER, {"tpm_limit": value}))
    assert status == 400 and err["param"] == "tpm_limit"
    status, err = await error_of(teams.team_new(admin, MASTER, {"rpm_limit": value}))
    assert status == 400 and err["param"] == "rpm_limit"


@pytest.mark.parametrize("value", [str(10**30), str(2**62)])
async def test_a_huge_page_number_is_a_400(admin: AdminContext, value: str) -> None:
    status, err = await error_of(keys.key_list(admin, VIEWER, {"page": value}))
    assert status == 400 and err["param"] == "page"
    status, err = await error_of(audit.audit_list(admin, VIEWER, {"page": value}))
    assert status == 400 and err["param"] == "page"
    status, err = await error_of(users.user_list(admin, VIEWER, {"page": value}))
    assert status == 400 and err["param"] == "page"


# ---- text PostgreSQL cannot store, JSON orjson cannot write -----------------------------------------

@pytest.mark.parametrize("body, param", [
    ({"key_alias": "a\x00b"}, "key_alias"),
    ({"metadata": {"note": "a\x00b"}}, "metadata"),
    ({"metadata": {"k\x00": 1}}, "metadata"),
    ({"tags": ["ok", "bad\x00"]}, "tags"),
    ({"metadata": orjson.loads('{"a":' * 300 + "1" + "}" * 300)}, "metadata"),   # too deep to store
    ({"metadata": {"n": 10**30}}, "metadata"),                                    # not a 64-bit integer
])
async def test_values_the_database_cannot_hold_are_a_400(admin: AdminContext, body: dict, param: str) -> None:
    status, err = await error_of(keys.key_generate(admin, MASTER, body))
    assert status == 400 and err["param"] == param


async def test_a_nul_in_an_id_is_a_400_everywhere(admin: AdminContext) -> None:
    for op, body, param in [
        (users.user_info, {"user_id": "a\x00"}, "user_id"),
        (customers.customer_info, {"end_user_id": "a\x00"}, "end_user_id"),
        (teams.team_info, {"team_id": "a\x00"}, "team_id"),
        (teams.team_new, {"members_with_roles": [{"role": "user", "user_id": "x\x00"}]}, "members_with_roles"),
        (users.user_list, {"user_ids": "a,b\x00"}, "user_ids"),
        (audit.audit_list, {"object_id": "a\x00"}, "object_id"),
    ]:
        status, err = await error_of(op(admin, MASTER, body))
        assert (status, err["param"]) == (400, param), op.__name__


async def test_an_audit_date_at_the_end_of_time_is_a_400(admin: AdminContext) -> None:
    status, err = await error_of(audit.audit_list(admin, VIEWER, {"end_date": "9999-12-31T23:00:00-05:00"}))
    assert status == 400 and err["param"] == "end_date"


async def test_lists_longer_than_a_statement_can_bind_are_a_400(admin: AdminContext) -> None:
    """PostgreSQL binds at most 65,535 parameters: a longer IN list was answered as a 503 "database
    unavailable" naming the database."""
    many = [f"sk-{i:08d}" for i in range(70_000)]
    status, err = await error_of(keys.key_delete(admin, MASTER, {"keys": many}))
    assert status == 400 and err["param"] == "keys"
    status, err = await error_of(users.user_list(admin, VIEWER, {"user_ids": ",".join(f"u{i}" for i in range(70_000))}))
    assert status == 400 and err["param"] == "user_ids"


# ---- per-model budgets and limits: negative numbers and bad windows were stored silently -----------

@pytest.mark.parametrize("body, param", [
    ({"model_max_budget": {"gpt-4o": {"budget_limit": -1}}}, "model_max_budget"),
    ({"model_max_budget": {"gpt-4o": -0.5}}, "model_max_budget"),
    ({"model_max_budget": {"gpt-4o": {"budget_limit": 1, "time_period": "3x"}}}, "model_max_budget"),
    ({"model_rpm_limit": {"gpt-4o": -1}}, "model_rpm_limit"),
    ({"model_tpm_limit": {"gpt-4o": "many"}}, "model_tpm_limit"),
    ({"model_tpm_limit": {"gpt-4o": True}}, "model_tpm_limit"),
])
async def test_per_model_budgets_and_limits_are_checked(admin: AdminContext, body: dict, param: str) -> None:
    """A negative per-model budget refused every request for that model, a ``time_period`` of
    ``"3x"`` was read back as a lifetime budget, a negative per-model limit refused everything."""
    status, err = await error_of(keys.key_generate(admin, MASTER, body))
    assert status == 400 and err["param"] == param
    status, err = await error_of(teams.team_new(admin, MASTER, body))
    assert status == 400 and err["param"] == param


async def test_good_per_model_budgets_and_limits_are_kept(admin: AdminContext) -> None:
    made = await keys.key_generate(admin, MASTER, {
        "model_max_budget": {"gpt-4o": {"budget_limit": 0.5, "time_period": "1d"}, "o1": 2},
        "model_rpm_limit": {"gpt-4o": 10}, "model_tpm_limit": {"gpt-4o": 1000, "o1": 0}})
    assert made["model_max_budget"] == {"gpt-4o": {"budget_limit": 0.5, "time_period": "1d"}, "o1": {"budget_limit": 2.0}}
    assert made["model_rpm_limit"] == {"gpt-4o": 10} and made["model_tpm_limit"] == {"gpt-4o": 1000, "o1": 0}


# ---- a key's allowed_routes are checked when they are set ------------------------------------------

@pytest.mark.parametrize("routes", [["key/info"], ["/chat/*/x"], ["not_a_group"], [""]])
async def test_bad_allowed_routes_are_refused_when_the_key_is_made(admin: AdminContext, routes: list) -> None:
    """They used to be stored as sent; the route check at request time then raised on every request
    (or, had the integration skipped the bad list, left the key unrestricted)."""
    status, err = await error_of(keys.key_generate(admin, MASTER, {"allowed_routes": routes}))
    assert status == 400 and err["param"] == "allowed_routes"
    made = await keys.key_generate(admin, MASTER, {})
    status, err = await error_of(keys.key_update(admin, MASTER, {"key": made["key"], "allowed_routes": routes}))
    assert status == 400 and err["param"] == "allowed_routes"
    status, err = await error_of(users.user_new(admin, MASTER, {"allowed_routes": routes}))
    assert status == 400 and err["param"] == "allowed_routes"


async def test_good_allowed_routes_are_stored_as_sent(admin: AdminContext) -> None:
    routes = ["llm_api_routes", "LiteLLMRoutes.info_routes", "/bria", "/audit/{id}", "/api/*", "anthropic_routes"]
    made = await keys.key_generate(admin, MASTER, {"allowed_routes": routes})
    assert made["allowed_routes"] == routes


# ---- secrets ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "postgresql://app@db.internal:5432/proxy?password=s3cr3t-pw&sslmode=require",
    "postgresql://app:s3cr3t-pw@db.internal/proxy?sslpassword=s3cr3t-pw",
    "postgresql://db.internal/proxy?user=app&PASSWORD=s3cr3t-pw",
])
def test_redacted_database_urls_hide_passwords_in_the_query_too(url: str) -> None:
    """``redacted()`` feeds every StoreUnavailable message (logs, and 503 answers to API callers)."""
    shown = parse_database_url(url).redacted()
    assert "s3cr3t-pw" not in shown and "db.internal" in shown
