"""``/team/list`` and ``/customer/list`` are paged (SQLite and PostgreSQL): LiteLLM's JSON array,
``page``/``page_size`` (default 100, at most 1000), totals for the HTTP headers, and a page costs
the same few statements whatever its size (no query per team or per customer)."""

from __future__ import annotations

from typing import Any

import pytest

from trioproxy.admin import AdminContext, customers, teams
from trioproxy.admin.common import PagedList
from trioproxy.store.sql import Conn

from .admin_helpers import MASTER, VIEWER, error_of


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every SQL statement run from here on."""
    seen: list[str] = []
    original = Conn._cursor

    def counting(self: Conn, sql: str, params: Any) -> Any:
        seen.append(sql)
        return original(self, sql, params)

    monkeypatch.setattr(Conn, "_cursor", counting)
    return seen


async def test_team_list_pages_with_a_default_and_a_maximum(admin: AdminContext, clock) -> None:
    for i in range(105):
        clock.advance(1)
        await teams.team_new(admin, MASTER, {"team_id": f"t{i:03}",
                                             "members_with_roles": [{"user_id": f"u{i}"}, {"user_id": "all"}]})
    first = await teams.team_list(admin, VIEWER, {})
    assert isinstance(first, PagedList) and len(first) == 100                 # bounded without page_size
    assert [t["team_id"] for t in first[:2]] == ["t000", "t001"]               # oldest first
    assert first.headers == {"x-total-count": "105", "x-page": "1", "x-page-size": "100", "x-total-pages": "2"}
    rest = await teams.team_list(admin, VIEWER, {"page": "2"})
    assert [t["team_id"] for t in rest] == [f"t{i}" for i in range(100, 105)]
    page = await teams.team_list(admin, VIEWER, {"page": "3", "page_size": "10"})
    assert [t["team_id"] for t in page] == [f"t{i:03}" for i in range(20, 30)]
    assert {m["user_id"] for m in page[0]["members_with_roles"]} == {"u20", "all"}
    assert len(await teams.team_list(admin, VIEWER, {"page_size": "1000"})) == 105
    mine = await teams.team_list(admin, VIEWER, {"user_id": "u7"})
    assert [t["team_id"] for t in mine] == ["t007"] and mine.headers["x-total-count"] == "1"
    assert await teams.team_list(admin, VIEWER, {"page": "99"}) == []
    for bad in ({"page_size": "1001"}, {"page_size": "0"}, {"page": "0"}, {"page_size": "x"}):
        status, err = await error_of(teams.team_list(admin, VIEWER, bad))
        name = next(iter(bad))
        assert status == 400 and err["param"] == name
        assert err["message"].startswith(f"/team/list: '{name}' must be an integer of at least 1 and at most")


async def test_a_team_page_costs_the_same_statements_whatever_its_size(admin: AdminContext, clock,
                                                                      statements: list[str]) -> None:
    for i in range(30):
        clock.advance(1)
        await teams.team_new(admin, MASTER, {"team_id": f"t{i:02}", "members_with_roles": [{"user_id": f"u{i}"}]})
    statements.clear()
    await teams.team_list(admin, VIEWER, {"page_size": "2"})
    small = len(statements)
    statements.clear()
    big = await teams.team_list(admin, VIEWER, {"page_size": "30"})
    assert len(statements) == small <= 4, statements
    assert all(len(t["members_with_roles"]) == 1 for t in big)


async def test_customer_list_pages_and_loads_budgets_once_per_page(admin: AdminContext, clock,
                                                                  statements: list[str]) -> None:
    for i in range(103):
        clock.advance(1)
        await customers.customer_new(admin, MASTER, {"user_id": f"c{i:03}", "max_budget": i + 1})
    statements.clear()
    first = await customers.customer_list(admin, VIEWER, {})
    assert len(statements) <= 4, statements                  # count, page, its budgets: not one per customer
    assert isinstance(first, PagedList) and len(first) == 100
    assert first.headers == {"x-total-count": "103", "x-page": "1", "x-page-size": "100", "x-total-pages": "2"}
    assert first[4]["user_id"] == "c004" and first[4]["litellm_budget_table"]["max_budget"] == 5.0
    rest = await customers.customer_list(admin, VIEWER, {"page": 2})
    assert [c["user_id"] for c in rest] == ["c100", "c101", "c102"]
    status, err = await error_of(customers.customer_list(admin, VIEWER, {"page_size": "5000"}))
    assert status == 400 and err["param"] == "page_size" and "at most 1000" in err["message"]
