"""``admin/key_generation.py`` alone: the settings' problems, defaults, bounds and who may generate;
``reject_client_tags``; a spend record that keeps its prompts across the outbox's JSON.

End to end on SQLite and PostgreSQL: tests/e2e/keys/test_keys_generation_settings.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from trioproxy.admin.key_generation import KeyGenerationPolicy, KeyGenerationSettingsError
from trioproxy.auth import reject_client_tags
from trioproxy.errors import BadRequestError, PermissionDeniedError, ProxyError
from trioproxy.spend.record import SpendRecord
from trioproxy.store.durations import parse_duration

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_every_problem_of_the_settings_is_named() -> None:
    with pytest.raises(KeyGenerationSettingsError) as caught:
        KeyGenerationPolicy.from_settings({
            "default_key_generate_params": {"max_budget": "lots", "colour": "red"},
            "upperbound_key_generate_params": {"duration": "forever"},
            "key_generation_settings": {"team_key_generation": {"allowed_team_member_roles": "admin"},
                                        "personal": {}},
        })
    text = " | ".join(caught.value.problems)
    assert "default_key_generate_params" in text and "'colour'" in text
    assert "upperbound_key_generate_params" in text and "duration" in text
    assert "allowed_team_member_roles: expected a list" in text and "'personal'" in text
    assert KeyGenerationPolicy.from_settings({}) is None


def test_defaults_and_bounds() -> None:
    policy = KeyGenerationPolicy.from_settings({
        "default_key_generate_params": {"max_budget": 1.5, "models": ["a"], "duration": "1d", "tpm_limit": None},
        "upperbound_key_generate_params": {"max_budget": 10, "duration": "30d", "budget_duration": "1mo"},
    })
    assert policy is not None and not policy.delegated
    out = policy.apply({"models": []}, NOW)
    assert out["max_budget"] == 1_500_000 and out["models"] == ["a"] and str(out["duration"]) == "1d"
    assert str(out["budget_duration"]) == "1mo" and "tpm_limit" not in out   # null default: nothing
    assert policy.apply({"duration": parse_duration("4w")}, NOW)["duration"] == parse_duration("4w")
    with pytest.raises(BadRequestError, match="duration is over max limit set in config - user_value=5w"):
        policy.apply({"duration": parse_duration("5w")}, NOW)
    with pytest.raises(BadRequestError, match="user_value=10.5; max_value=10.0"):
        policy.apply({"max_budget": 10_500_000}, NOW)


def test_who_may_generate() -> None:
    policy = KeyGenerationPolicy.from_settings({"key_generation_settings": {
        "personal_key_generation": {"allowed_user_roles": ["internal_user"], "required_params": ["key_alias"]}}})
    assert policy is not None and policy.delegated
    mine = policy.check_non_admin(role="internal_user", user_id="u1", fields={"key_alias": "a"},
                                  sent={"key_alias": "a"}, team_role=None)
    assert mine["user_id"] == "u1"
    with pytest.raises(BadRequestError, match="Required param key_alias"):
        policy.check_non_admin(role="internal_user", user_id="u1", fields={}, sent={}, team_role=None)
    with pytest.raises(BadRequestError, match="Required param key_alias"):
        policy.check_admin_personal({}, {})   # LiteLLM asks admins too, for personal keys
    with pytest.raises(PermissionDeniedError):
        policy.check_non_admin(role="internal_user", user_id="u1", fields={}, sent={"spend": 0}, team_role=None)
    # without team_key_generation, LiteLLM's default: team members with role admin or user
    team = policy.check_non_admin(role="internal_user", user_id="u1", fields={"team_id": "t"}, sent={"team_id": "t"},
                                  team_role="user")
    assert team["user_id"] == "u1" and team["team_id"] == "t"
    with pytest.raises(BadRequestError, match="not assigned to team=t"):
        policy.check_non_admin(role="internal_user", user_id="u1", fields={"team_id": "t"}, sent={}, team_role=None)
    only_bounds = KeyGenerationPolicy.from_settings({"upperbound_key_generate_params": {"rpm_limit": 5}})
    assert only_bounds is not None
    with pytest.raises(PermissionDeniedError, match="admin only route"):
        only_bounds.check_non_admin(role="internal_user", user_id="u1", fields={}, sent={}, team_role=None)


def test_client_side_tags() -> None:
    reject_client_tags({"model": "m", "metadata": {"trace": 1}})
    for body, param in (({"metadata": {"tags": []}}, "metadata.tags"), ({"tags": ["a"]}, "tags")):
        with pytest.raises(ProxyError) as caught:
            reject_client_tags(body)
        assert caught.value.status_code == 400 and caught.value.param == param


def test_a_record_keeps_its_prompts_through_the_outbox() -> None:
    record = SpendRecord(
        "req-1", "acompletion", "h" * 64, 10, 1, 2, 3, NOW, NOW, None, "m", "m", None, None, None, None, None, None,
        None, None, {}, False, (), "success", None, messages=[{"role": "user", "content": "hi"}],
        response={"choices": []}, proxy_server_request={"model": "m"})
    again = SpendRecord.from_json(record.to_json())
    assert again == record
    row = again.to_row()
    assert row["messages"] == [{"role": "user", "content": "hi"}] and row["proxy_server_request"] == {"model": "m"}
    plain = SpendRecord.from_json(record.__class__(*[getattr(record, f) for f in (
        "request_id", "call_type", "api_key", "spend", "prompt_tokens", "completion_tokens", "total_tokens",
        "start_time", "end_time", "completion_start_time", "model", "model_group", "model_id", "custom_llm_provider",
        "api_base", "user", "team_id", "organization_id", "end_user", "requester_ip_address", "metadata",
        "cache_hit", "request_tags", "status", "session_id")]).to_json())
    assert "messages" not in plain.to_row()   # without the setting the row is as before
