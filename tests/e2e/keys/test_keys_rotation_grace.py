"""Rotation grace periods are bounded, through a real ``trioproxy run`` on SQLite and PostgreSQL.

``grace_period`` is at most 30 days on both rotation routes (a 400 naming the limit, nothing
rotated); a rotation without grace ends the grace of every earlier rotation's secret at once, and
a shorter grace caps the earlier ones.
"""

from __future__ import annotations

import uuid

import pytest

from support.keys_support import Api, error


@pytest.mark.parametrize("grace", ["31d", "721h", "5w", "1mo", "2mo", "2592001s"])
def test_a_grace_period_over_30_days_is_a_400_naming_the_limit_on_both_routes(api: Api, grace: str) -> None:
    made = api.new_key(key_alias=f"grace-{uuid.uuid4().hex[:8]}")
    for path, body in [("/key/regenerate", {"key": made["key"], "grace_period": grace}),
                       (f"/key/{made['token']}/regenerate", {"grace_period": grace})]:
        response = api.post(path, body)
        assert response.status_code == 400, (path, response.text)
        err = error(response)
        assert err["param"] == "grace_period" and err["code"] == "400"
        assert err["message"].startswith(f"/key/regenerate: grace_period '{grace}' is too long: it is at most "
                                         "30 days ('30d', '720h'; a month counts as 31 days).")
        assert made["key"] not in response.text
    assert api.chat(made["key"]).status_code == 200                       # nothing was rotated
    assert api.ok(api.get("/key/info", {"key": made["token"]}))["info"]["rotation_count"] == 0


@pytest.mark.parametrize("grace", ["30d", "720h", "2592000s", "4w"])
def test_the_limit_itself_is_accepted(api: Api, grace: str) -> None:
    made = api.new_key()
    rotated = api.ok(api.post("/key/regenerate", {"key": made["key"], "grace_period": grace}))
    assert api.chat(made["key"]).status_code == 200 and api.chat(rotated["key"]).status_code == 200


def test_a_rotation_without_grace_ends_earlier_rotations_grace(api: Api) -> None:
    first = api.new_key()["key"]
    second = api.ok(api.post("/key/regenerate", {"key": first, "grace_period": "7d"}))["key"]
    third = api.ok(api.post(f"/key/{second}/regenerate", {"grace_period": "1h"}))["key"]
    for key in (first, second, third):          # the first's 7 days are capped to the newest 1 h, not ended
        assert api.chat(key).status_code == 200
    # the key leaked: rotate without grace — every earlier secret is refused on the next request
    fourth = api.ok(api.post("/key/regenerate", {"key": third}))["key"]
    for dead in (first, second, third):
        response = api.chat(dead)
        assert response.status_code == 401, response.text
        assert "not found in db" in error(response)["message"]
    assert api.chat(fourth).status_code == 200
