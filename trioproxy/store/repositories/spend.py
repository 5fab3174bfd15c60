"""Spend: the ledger (``spend_logs``), its aggregates, budget-window resets, and the spend queries.

**Exactly once.** :func:`write_spend_tx` inserts a batch with ``INSERT … ON CONFLICT (request_id) DO
NOTHING RETURNING request_id`` and feeds the aggregates only from the rows it actually inserted, in
the same transaction: a retried batch, a replayed outbox or two processes replaying the same
records count each request once, and every aggregate equals the sum of its records.

Aggregates updated per inserted record (money in micro-USD):

* ``virtual_keys.spend`` (the record's ``api_key``; a key rotated with a grace period is found
  through ``deprecated_keys``), ``teams.spend``, ``team_memberships.spend`` (team member),
  ``internal_users.spend`` (the key's user), ``end_users.spend`` (the request's ``user``; the
  customer row is created on first use);
* ``daily_spend`` per UTC day (of ``start_time``) for the entities ``key``, ``user``, ``team``,
  ``end_user`` and ``tag`` (one row per tag), each split by ``api_key``, ``model`` and provider:
  spend, tokens, requests, successes, failures. Spend per model is the ``key`` rows grouped by model.

**Budget windows.** Rows with a ``budget_duration`` hold the spend of their *current* window. Before
adding, a row whose ``budget_reset_at`` has passed is rolled forward (spend 0, ``budget_reset_at`` →
end of the window containing now), and a record whose ``end_time`` lies before the current window
(written late: the store was down across a reset) is not added to that row's spend — it stays in
the ledger and in ``daily_spend``. Team memberships have their own window (``max_budget_in_team`` with
``budget_duration``, revision 0003). Customers' windows are their budget row's (``budgets``): rolling
a budget row resets every customer attached to it. :func:`roll_due_tx` rolls every overdue row
(the reset service calls it on time). Rolls are compare-and-set on ``budget_reset_at``, so
concurrent rollers (several processes) roll a row once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..budget_windows import parse_budget_duration, roll_forward, window_start
from ..invalidation import Invalidation
from ..schema import spend_logs
from ..sql import Conn, codec_for, encode_time, quote
from .base import RepoContext

__all__ = ["Rolled", "SpendRepository", "roll_due_tx", "write_spend_tx"]

_COLUMNS = tuple(c.name for c in spend_logs.columns if c.name != "id")


@dataclass
class Rolled:
    """What a roll changed: invalidations to publish, and the next time anything is due."""

    events: list[Invalidation] = field(default_factory=list)
    next_due: datetime | None = None


# --- windows ---------------------------------------------------------------------------------------

_WINDOWED = {  # table → primary key column, invalidation kind
    "virtual_keys": ("token", Invalidation.key),
    "teams": ("team_id", Invalidation.team),
    "internal_users": ("user_id", Invalidation.user),
    "budgets": ("budget_id", None),
}


def _roll_row_tx(conn: Conn, table: str, pk: str, pk_value: str, duration_text: str | None,
                 reset_at: datetime | None, now: datetime, rolled: Rolled) -> tuple[datetime | None, bool]:
    """Roll one row if due; returns (start of its current window or None for lifetime, rolled?)."""
    duration = parse_budget_duration(duration_text)
    if duration is None or reset_at is None:
        return None, False
    if now < reset_at:
        return window_start(reset_at, duration), False
    new_reset = roll_forward(reset_at, duration, now)
    d = conn.dialect
    changed = conn.execute(
        f'UPDATE {quote(table)} SET "budget_reset_at" = :new, "updated_at" = :now'
        + (', "spend" = 0' if table != "budgets" else "")
        + f' WHERE {quote(pk)} = :id AND "budget_reset_at" = :old',
        {"new": encode_time(new_reset, d), "now": encode_time(now, d), "id": pk_value,
         "old": encode_time(reset_at, d)})
    if changed:
        if table == "budgets":
            for row in conn.all('SELECT "user_id" FROM "end_users" WHERE "budget_id" = :id', {"id": pk_value}):
                rolled.events.append(Invalidation.customer(row["user_id"]))
            conn.execute('UPDATE "end_users" SET "spend" = 0 WHERE "budget_id" = :id', {"id": pk_value})
        else:
            rolled.events.append(_WINDOWED[table][1](pk_value))  # type: ignore[misc]
        return window_start(new_reset, duration), True
    # someone else rolled it first: read the row as it is now
    row = conn.one(f'SELECT "budget_duration", "budget_reset_at" FROM {quote(table)} WHERE {quote(pk)} = :id',
                   {"id": pk_value})
    if row is None:
        return None, False
    current = _decode_time(conn, row["budget_reset_at"])
    dur = parse_budget_duration(row["budget_duration"])
    if dur is None or current is None:
        return None, False
    return window_start(current, dur), False


def _decode_time(conn: Conn, value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _roll_member_tx(conn: Conn, team_id: str, user_id: str, duration_text: str | None,
                    reset_at: datetime | None, now: datetime, rolled: Rolled) -> datetime | None:
    """:func:`_roll_row_tx` for a team membership (two-column key, no ``updated_at``); the start of
    its current window, None for a lifetime budget. Publishes the member's user and team (the key
    cache reads the membership with the key; both kinds drop the keys involved)."""
    duration = parse_budget_duration(duration_text)
    if duration is None or reset_at is None:
        return None
    if now < reset_at:
        return window_start(reset_at, duration)
    new_reset = roll_forward(reset_at, duration, now)
    d = conn.dialect
    where = {"t": team_id, "u": user_id}
    changed = conn.execute(
        'UPDATE "team_memberships" SET "budget_reset_at" = :new, "spend" = 0 '
        'WHERE "team_id" = :t AND "user_id" = :u AND "budget_reset_at" = :old',
        {"new": encode_time(new_reset, d), "old": encode_time(reset_at, d), **where})
    if changed:
        rolled.events += [Invalidation.user(user_id), Invalidation.team(team_id)]
        return window_start(new_reset, duration)
    row = conn.one('SELECT "budget_duration", "budget_reset_at" FROM "team_memberships" '
                   'WHERE "team_id" = :t AND "user_id" = :u', where)
    if row is None:
        return None
    current, dur = _decode_time(conn, row["budget_reset_at"]), parse_budget_duration(row["budget_duration"])
    return window_start(current, dur) if current is not None and dur is not None else None


def _add_members(conn: Conn, by_member: Mapping[tuple[str, str], list[Mapping[str, Any]]], now: datetime,
                 rolled: Rolled) -> None:
    """spend += records in the membership's current window (rolled first when due)."""
    updates = []
    for (team_id, user_id), records in sorted(by_member.items()):
        row = conn.one('SELECT "budget_duration", "budget_reset_at" FROM "team_memberships" '
                       'WHERE "team_id" = :t AND "user_id" = :u', {"t": team_id, "u": user_id})
        if row is None:
            continue
        start = _roll_member_tx(conn, team_id, user_id, row["budget_duration"],
                                _decode_time(conn, row["budget_reset_at"]), now, rolled)
        updates.append({"d": sum(r["spend"] for r in records if _in_window(r, start)), "t": team_id, "u": user_id})
    conn.execute_many('UPDATE "team_memberships" SET "spend" = "spend" + :d WHERE "team_id" = :t AND "user_id" = :u',
                      updates)


def roll_due_tx(conn: Conn, now: datetime) -> Rolled:
    """Roll every row whose ``budget_reset_at`` passed; report the next due time."""
    rolled = Rolled()
    now_param = encode_time(now, conn.dialect)
    for table, (pk, _) in _WINDOWED.items():
        rows = conn.all(
            f'SELECT {quote(pk)} AS pk, "budget_duration", "budget_reset_at" FROM {quote(table)} '
            'WHERE "budget_duration" IS NOT NULL AND "budget_reset_at" <= :now', {"now": now_param})
        for row in rows:
            _roll_row_tx(conn, table, pk, row["pk"], row["budget_duration"],
                         _decode_time(conn, row["budget_reset_at"]), now, rolled)
    for row in conn.all('SELECT "team_id", "user_id", "budget_duration", "budget_reset_at" FROM "team_memberships" '
                        'WHERE "budget_duration" IS NOT NULL AND "budget_reset_at" <= :now', {"now": now_param}):
        _roll_member_tx(conn, row["team_id"], row["user_id"], row["budget_duration"],
                        _decode_time(conn, row["budget_reset_at"]), now, rolled)
    for table in (*_WINDOWED, "team_memberships"):
        value = _decode_time(conn, conn.scalar(
            f'SELECT MIN("budget_reset_at") AS m FROM {quote(table)} WHERE "budget_duration" IS NOT NULL'))
        if value is not None and (rolled.next_due is None or value < rolled.next_due):
            rolled.next_due = value
    return rolled


# --- the write ---------------------------------------------------------------------------------------

_INSERT_SQL = (f'INSERT INTO "spend_logs" ({", ".join(quote(c) for c in _COLUMNS)}) '
               f'VALUES ({", ".join(":" + c for c in _COLUMNS)}) ON CONFLICT ("request_id") DO NOTHING')


def _insert_rows(conn: Conn, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Insert each row unless its request id is stored; the ids actually inserted.

    Measured (5 000 rows, ``/tmp`` scratch runs on the dev machine): one multi-row
    ``INSERT … VALUES (…), (…) RETURNING`` reached ~4 100 rows/s on both backends; per-row
    statements with ``rowcount`` on SQLite 25 600 rows/s, psycopg's pipelined ``executemany(…,
    returning=True)`` on PostgreSQL 17 300 rows/s — so those.
    """
    codec = codec_for(spend_logs, conn.dialect)  # type: ignore[arg-type]
    params = [codec.encode({c: row.get(c) for c in _COLUMNS}) for row in rows]
    if conn.dialect == "sqlite":
        raw = conn.raw
        return [p["request_id"] for p in params if raw.execute(_INSERT_SQL, p).rowcount == 1]
    inserted: list[str] = []
    with conn.raw.cursor() as cur:
        cur.executemany(conn._sql(_INSERT_SQL + ' RETURNING "request_id"'), params, returning=True)
        while True:
            inserted += [r["request_id"] for r in cur.fetchall()]
            if not cur.nextset():
                break
    return inserted


def _in_window(row: Mapping[str, Any], start: datetime | None) -> bool:
    return start is None or row["end_time"] >= start


def _select_in(conn: Conn, sql_prefix: str, column: str, ids: Sequence[str]) -> list[dict[str, Any]]:
    if not ids:
        return []
    params = {f"i{n}": v for n, v in enumerate(ids)}
    placeholders = ", ".join(f":i{n}" for n in range(len(ids)))
    return conn.all(f"{sql_prefix} WHERE {quote(column)} IN ({placeholders})", params)


def _add_windowed(conn: Conn, table: str, pk: str, by_id: Mapping[str, list[Mapping[str, Any]]],
                  now: datetime, rolled: Rolled, *, alias: Mapping[str, str] | None = None) -> None:
    """spend += records in the row's current window, for each row of ``table`` named in ``by_id``."""
    ids = sorted(by_id)
    found = _select_in(conn, f'SELECT {quote(pk)} AS pk, "budget_duration", "budget_reset_at" FROM {quote(table)}',
                       pk, ids)
    d = conn.dialect
    updates = []
    keys = table == "virtual_keys"
    for row in sorted(found, key=lambda r: r["pk"]):
        start, _ = _roll_row_tx(conn, table, pk, row["pk"], row["budget_duration"],
                                _decode_time(conn, row["budget_reset_at"]), now, rolled)
        records = by_id[row["pk"]]
        params = {"d": sum(r["spend"] for r in records if _in_window(r, start)), "id": row["pk"]}
        if keys:
            params["last"] = encode_time(max(r["end_time"] for r in records), d)
        updates.append(params)
    extra = ', "last_active" = :last' if keys else ""
    conn.execute_many(f'UPDATE {quote(table)} SET "spend" = "spend" + :d{extra} WHERE {quote(pk)} = :id', updates)


def _key_aliases(conn: Conn, tokens: Sequence[str]) -> dict[str, str]:
    """Old hashes (rotated with a grace period) → the row's current hash."""
    rows = _select_in(conn, 'SELECT "token", "active_token" FROM "deprecated_keys"', "token", tokens)
    return {r["token"]: r["active_token"] for r in rows}


def _add_customers(conn: Conn, by_customer: Mapping[str, list[Mapping[str, Any]]], now: datetime,
                   rolled: Rolled) -> None:
    ids = sorted(by_customer)
    found = {r["user_id"]: r for r in _select_in(
        conn, 'SELECT c."user_id", b."budget_id", b."budget_duration", b."budget_reset_at" '
        'FROM "end_users" c LEFT JOIN "budgets" b ON b."budget_id" = c."budget_id"', 'c"."user_id', ids)}
    starts: dict[str, datetime | None] = {}
    d = conn.dialect
    updates: list[dict[str, Any]] = []
    inserts: list[dict[str, Any]] = []
    for user_id in ids:
        records = by_customer[user_id]
        row = found.get(user_id)
        start = None
        if row is not None and row["budget_id"] is not None:
            budget_id = row["budget_id"]
            if budget_id not in starts:
                starts[budget_id], _ = _roll_row_tx(conn, "budgets", "budget_id", budget_id, row["budget_duration"],
                                                    _decode_time(conn, row["budget_reset_at"]), now, rolled)
            start = starts[budget_id]
        delta = sum(r["spend"] for r in records if _in_window(r, start))
        if row is not None:
            updates.append({"d": delta, "id": user_id})
        else:   # first use: the customer exists from now on (spend tracked), like LiteLLM
            inserts.append({"id": user_id, "d": delta, "f": False, "now": encode_time(now, d)})
    conn.execute_many('UPDATE "end_users" SET "spend" = "spend" + :d WHERE "user_id" = :id', updates)
    conn.execute_many(
        'INSERT INTO "end_users" ("user_id", "spend", "blocked", "created_at", "updated_at") '
        'VALUES (:id, :d, :f, :now, :now) ON CONFLICT ("user_id") DO UPDATE '
        'SET "spend" = "end_users"."spend" + excluded."spend"', inserts)


_DAILY_SQL = (
    'INSERT INTO "daily_spend" ("entity_type", "entity_id", "date", "api_key", "model", "model_group", '
    '"custom_llm_provider", "prompt_tokens", "completion_tokens", "spend", "api_requests", '
    '"successful_requests", "failed_requests", "created_at", "updated_at") VALUES (:et, :eid, :date, :k, :m, :mg, '
    ':p, :pt, :outt, :s, :n, :ok, :ko, :now, :now) '
    'ON CONFLICT ("entity_type", "entity_id", "date", "api_key", "model", "custom_llm_provider") DO UPDATE SET '
    '"prompt_tokens" = "daily_spend"."prompt_tokens" + excluded."prompt_tokens", '
    '"completion_tokens" = "daily_spend"."completion_tokens" + excluded."completion_tokens", '
    '"spend" = "daily_spend"."spend" + excluded."spend", '
    '"api_requests" = "daily_spend"."api_requests" + excluded."api_requests", '
    '"successful_requests" = "daily_spend"."successful_requests" + excluded."successful_requests", '
    '"failed_requests" = "daily_spend"."failed_requests" + excluded."failed_requests", '
    '"updated_at" = excluded."updated_at"'
)


def _entities(row: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    yield "key", row.get("api_key") or ""
    for kind, column in (("user", "user_id"), ("team", "team_id"), ("end_user", "end_user")):
        if row.get(column):
            yield kind, row[column]
    for tag in row.get("request_tags") or ():
        yield "tag", tag


def _add_daily(conn: Conn, rows: Sequence[Mapping[str, Any]], now: datetime) -> None:
    buckets: dict[tuple[str, str, str, str, str, str], list[Any]] = {}
    for row in rows:
        date = row["start_time"].astimezone(UTC).strftime("%Y-%m-%d")
        ok = row.get("status") != "failure"
        for kind, entity in _entities(row):
            bucket_key = (kind, entity, date, row.get("api_key") or "", row.get("model") or "",
                          row.get("custom_llm_provider") or "")
            b = buckets.get(bucket_key)
            if b is None:
                b = buckets[bucket_key] = [row.get("model_group"), 0, 0, 0, 0, 0, 0]
            b[1] += row.get("prompt_tokens") or 0
            b[2] += row.get("completion_tokens") or 0
            b[3] += row.get("spend") or 0
            b[4] += 1
            b[5] += 1 if ok else 0
            b[6] += 0 if ok else 1
    now_param = encode_time(now, conn.dialect)  # type: ignore[arg-type]
    conn.execute_many(_DAILY_SQL, [
        {"et": kind, "eid": entity, "date": date, "k": key, "m": model, "mg": b[0], "p": provider, "pt": b[1],
         "outt": b[2], "s": b[3], "n": b[4], "ok": b[5], "ko": b[6], "now": now_param}
        for (kind, entity, date, key, model, provider), b in sorted(buckets.items())])


def write_spend_tx(conn: Conn, rows: Sequence[Mapping[str, Any]], now: datetime) -> tuple[list[str], Rolled]:
    """Insert ``rows`` (``spend_logs`` columns) once each; update the aggregates of those inserted.

    Returns the request ids actually inserted (the others were already stored) and what rolled.
    """
    unique: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        unique.setdefault(row["request_id"], row)
    batch = list(unique.values())
    inserted = _insert_rows(conn, batch)
    rolled = Rolled()
    if not inserted:
        return inserted, rolled
    new = [unique[rid] for rid in inserted]
    by_key: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    by_team: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    by_user: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    by_member: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    by_customer: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in new:
        if row.get("api_key"):
            by_key[row["api_key"]].append(row)
        if row.get("team_id"):
            by_team[row["team_id"]].append(row)
            if row.get("user_id"):
                by_member[(row["team_id"], row["user_id"])].append(row)
        if row.get("user_id"):
            by_user[row["user_id"]].append(row)
        if row.get("end_user"):
            by_customer[row["end_user"]].append(row)
    aliases = _key_aliases(conn, sorted(by_key))
    if aliases:
        merged: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for token, records in by_key.items():
            merged[aliases.get(token, token)].extend(records)
        by_key = merged
    _add_windowed(conn, "virtual_keys", "token", by_key, now, rolled)
    _add_windowed(conn, "teams", "team_id", by_team, now, rolled)
    _add_windowed(conn, "internal_users", "user_id", by_user, now, rolled)
    _add_members(conn, by_member, now, rolled)
    _add_customers(conn, by_customer, now, rolled)
    _add_daily(conn, new, now)
    return inserted, rolled


# --- the repository (async) ------------------------------------------------------------------------

class SpendRepository:
    """Spend writes and reads. ``write`` is what the spend writer calls (one transaction per batch)."""

    def __init__(self, ctx: RepoContext):
        self.ctx = ctx

    async def write(self, rows: Sequence[Mapping[str, Any]], *, now: datetime | None = None) -> list[str]:
        """Store ``rows`` exactly once; the request ids inserted by this call."""
        at = now or self.ctx.clock()
        rolled: Rolled | None = None

        def run(conn: Conn) -> list[str]:
            nonlocal rolled
            inserted, rolled = write_spend_tx(conn, rows, at)
            return inserted

        try:
            return await self.ctx.db.write(run)
        finally:
            if rolled is not None and rolled.events:
                self.ctx.bus.publish(*rolled.events)

    async def proxy_budget_start(self, duration: str, *, now: datetime | None = None) -> datetime:
        """The start of the proxy budget's first window for ``duration`` (``litellm_settings``).

        The first process to ask stores ``now``; every later one (another instance, a restart) reads
        it, so windows step from one shared start instead of the UTC clock. A different stored duration
        means the budget was set anew (the operator changed the config): its first window starts now.
        Both writes are conditional, so processes starting together agree on one row.
        """
        at = now or self.ctx.clock()

        def run(conn: Conn) -> datetime:
            d = conn.dialect
            params = {"id": "proxy", "d": duration, "at": encode_time(at, d)}
            conn.execute('INSERT INTO "proxy_budget" ("id", "budget_duration", "budget_start", "updated_at") '
                         'VALUES (:id, :d, :at, :at) ON CONFLICT ("id") DO NOTHING', params)
            conn.execute('UPDATE "proxy_budget" SET "budget_duration" = :d, "budget_start" = :at, "updated_at" = :at '
                         'WHERE "id" = :id AND "budget_duration" <> :d', params)
            start = _decode_time(conn, conn.scalar('SELECT "budget_start" FROM "proxy_budget" WHERE "id" = :id',
                                                   {"id": "proxy"}))
            assert start is not None
            return start

        return await self.ctx.db.write(run)

    async def roll_due(self, *, now: datetime | None = None) -> Rolled:
        """Reset every budget whose window ended; publishes the invalidations."""
        at = now or self.ctx.clock()
        rolled = await self.ctx.db.write(lambda conn: roll_due_tx(conn, at))
        if rolled.events:
            self.ctx.bus.publish(*rolled.events)
        return rolled

    async def spend_since(self, since: datetime, *, api_key: str | None = None, model: str | None = None,
                          team_id: str | None = None) -> int:
        """Micro-USD of the ledger rows that ended at or after ``since`` (optionally one key or one
        team, one model group): the seed of counters without a stored anchor (proxy budget,
        ``model_max_budget`` of keys and teams)."""
        sql = 'SELECT COALESCE(SUM("spend"), 0) AS s FROM "spend_logs" WHERE "end_time" >= :since'
        params: dict[str, Any] = {}
        if api_key is not None:
            sql += ' AND "api_key" = :k'
            params["k"] = api_key
        if team_id is not None:
            sql += ' AND "team_id" = :t'
            params["t"] = team_id
        if model is not None:
            sql += ' AND ("model_group" = :m OR ("model_group" IS NULL AND "model" = :m))'
            params["m"] = model

        def run(conn: Conn) -> int:
            params["since"] = encode_time(since, conn.dialect)  # type: ignore[arg-type]
            return int(conn.scalar(sql, params) or 0)

        return await self.ctx.db.read(run)

    # --- reads for the spend endpoints ----------------------------------------------------------------
    async def logs(self, *, request_id: str | None = None, api_key: str | None = None, user_id: str | None = None,
                   start: datetime | None = None, end: datetime | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Ledger rows, newest first: by request id, key hash, user, ``start ≤ start_time < end``."""
        def run(conn: Conn) -> list[dict[str, Any]]:
            where, params = [], {}
            for name, column, value in (("rid", "request_id", request_id), ("k", "api_key", api_key),
                                        ("u", "user_id", user_id)):
                if value is not None:
                    where.append(f'{quote(column)} = :{name}')
                    params[name] = value
            if start is not None:
                where.append('"start_time" >= :start')
                params["start"] = encode_time(start, conn.dialect)  # type: ignore[arg-type]
            if end is not None:
                where.append('"start_time" < :end')
                params["end"] = encode_time(end, conn.dialect)  # type: ignore[arg-type]
            sql = 'SELECT * FROM "spend_logs"' + (" WHERE " + " AND ".join(where) if where else "")
            sql += f' ORDER BY "start_time" DESC, "id" DESC LIMIT {int(limit)}'
            codec = codec_for(spend_logs, conn.dialect)  # type: ignore[arg-type]
            return [codec.decode(r) for r in conn.all(sql, params)]

        return await self.ctx.db.read(run)

    async def daily(self, entity_type: str, *, entity_id: str | None = None, start_date: str | None = None,
                    end_date: str | None = None, group_by: tuple[str, ...] = ("entity_id",)) -> list[dict[str, Any]]:
        """``daily_spend`` summed per ``group_by`` (``entity_id``, ``date``, ``model``, ``api_key``), with
        ``spend``, ``api_requests``, tokens; dates are ``YYYY-MM-DD`` (start inclusive, end inclusive)."""
        allowed = {"entity_id", "date", "model", "api_key"}
        if not set(group_by) <= allowed:
            raise ValueError(f"group_by must be among {sorted(allowed)}")
        cols = ", ".join(quote(c) for c in group_by)
        sql = (f'SELECT {cols}, SUM("spend") AS spend, SUM("api_requests") AS api_requests, '
               'SUM("prompt_tokens") AS prompt_tokens, SUM("completion_tokens") AS completion_tokens '
               'FROM "daily_spend" WHERE "entity_type" = :et')
        params: dict[str, Any] = {"et": entity_type}
        if entity_id is not None:
            sql += ' AND "entity_id" = :eid'
            params["eid"] = entity_id
        if start_date is not None:
            sql += ' AND "date" >= :sd'
            params["sd"] = start_date
        if end_date is not None:
            sql += ' AND "date" <= :ed'
            params["ed"] = end_date
        sql += f" GROUP BY {cols} ORDER BY {cols}"
        return await self.ctx.db.read(lambda conn: [
            {**r, "spend": int(r["spend"] or 0), "api_requests": int(r["api_requests"] or 0),
             "prompt_tokens": int(r["prompt_tokens"] or 0), "completion_tokens": int(r["completion_tokens"] or 0)}
            for r in conn.all(sql, params)])

    async def names(self, table: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Display names: ``virtual_keys`` → key_alias/key_name by token, ``teams`` → team_alias by id."""
        if table == "virtual_keys":
            prefix, column = 'SELECT "token" AS id, "key_alias", "key_name" FROM "virtual_keys"', "token"
        elif table == "teams":
            prefix, column = 'SELECT "team_id" AS id, "team_alias" FROM "teams"', "team_id"
        else:
            raise ValueError(f"no display names for {table}")
        unique = sorted(set(ids))
        return await self.ctx.db.read(lambda conn: {r["id"]: r for r in _select_in(conn, prefix, column, unique)})
