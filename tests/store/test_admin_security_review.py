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
