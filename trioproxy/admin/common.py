"""What every management operation shares: the context, key helpers, store-error translation."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..auth.identity import hash_key
from ..errors import ProxyError, ServiceUnavailableError
from ..store import Store
from ..store.durations import Duration
from ..store.errors import Conflict, MissingReference, NotFound, StoreClosed, StoreUnavailable
from .errors import bad_request, is_hash, not_found

__all__ = ["AdminContext", "new_clear_key", "store_errors", "token_of"]

log = logging.getLogger("trioproxy.admin")

NO_DATABASE = ("Connect Proxy to database to generate keys: set general_settings.database_url "
               "(sqlite:///path/proxy.db or postgresql://...) or DATABASE_URL.")


def no_database() -> ProxyError:
    """Management without a database: **501** (this proxy is not set up to do it; retrying will not
    help — LiteLLM answers a bare 500), with LiteLLM's message."""
    return ProxyError(NO_DATABASE, status_code=501, code="501")


@dataclass
class AdminContext:
    """What the operations need: the store (``None`` when no database is configured).

    ``config_blocked_users``: the ids ``blocked_user_check`` blocks from the config's
    ``blocked_user_list`` (empty without that built-in); ``/customer/unblock`` names those it
    cannot unblock.
    """

    store: Store | None
    settings: Mapping[str, Any] = field(default_factory=dict)
    config_blocked_users: frozenset[str] = frozenset()
    #: drops the live budget counter of a key (by hash) whose ``spend`` an admin set, so that it is
    #: seeded again from the row (docs/spend.md); None when nothing counts budgets
    forget_key_spend: Callable[[str], Awaitable[None]] | None = None
    #: ``litellm_settings``' key generation rules (``admin/key_generation.py``); None: none set
    key_generation: Any = None
    #: ``general_settings.custom_team_metadata_validate`` (``admin/team_metadata.py``); None: none set
    team_metadata_validator: Any = None
    #: ``general_settings.custom_key_generate`` / ``custom_key_update`` (``admin/custom_key_hooks.py``)
    custom_key_hooks: Any = None

    def require_store(self) -> Store:
        if self.store is None:
            raise no_database()
        return self.store

    def now(self) -> datetime:
        return self.require_store().ctx.clock()


def new_clear_key() -> str:
    """``sk-`` + 43 URL-safe characters (32 random bytes): the only place a key is minted."""
    return "sk-" + secrets.token_urlsafe(32)


def token_of(value: str) -> str:
    """A key as the caller named it (clear ``sk-…`` or its 64-hex hash) → the hash."""
    return value if is_hash(value) else hash_key(value)


def reset_after(duration: Duration | None, now: datetime) -> datetime | None:
    return duration.after(now) if duration is not None else None


_CONFLICT_MESSAGES = {
    ("key", "key_alias"): "Key with alias '{value}' already exists. Unique key aliases across all keys are required.",
    ("key", "token"): "A key with this value already exists; choose another 'key'.",
    ("team", "team_id"): "Team id = {value} already exists. Please use a different team id.",
    ("user", "user_id"): "User with user_id={value} already exists.",
    ("user", "user_email"): "User with user_email={value} already exists.",
    ("customer", "user_id"): "Customer already exists, passed user_id={value}. Please pass a new user_id.",
    ("budget", "budget_id"): "Budget id = {value} already exists. Please use a different budget id.",
    ("team member", "user_id"): "User already in team. Member: user_id={value}",
}

_NOT_FOUND_MESSAGES = {
    "key": "Key not found: {ids}",
    "team": "Team not found, passed team_id={ids}",
    "user": "User {ids} not found",
    "customer": "End User Id(s)={ids} do not exist in db",
    "team member": "Member not found in team: {ids}",
    "budget": "Budget not found: {ids}",
}


@contextmanager
def store_errors() -> Iterator[None]:
    """The store's errors → LiteLLM's statuses and messages."""
    try:
        yield
    except NotFound as exc:
        template = _NOT_FOUND_MESSAGES.get(exc.entity, "{entity} not found: {ids}")
        raise not_found(template.format(ids=", ".join(exc.ids), entity=exc.entity)) from None
    except Conflict as exc:
        template = _CONFLICT_MESSAGES.get((exc.entity, exc.field), "{field}={value} already exists")
        value = exc.value if exc.field != "token" else ""
        param = "key" if exc.field == "token" else exc.field   # the body names it 'key' (or 'new_key')
        raise bad_request(template.format(value=value, field=exc.field), param=param) from None
    except MissingReference as exc:
        if exc.entity == "team":
            raise bad_request(f"Unable to find team object in database. Team ID: {exc.id}", param="team_id") from None
        raise bad_request(f"{exc.entity.capitalize()} not found: {exc.entity}_id={exc.id}",
                          param=f"{exc.entity}_id") from None
    except (StoreUnavailable, StoreClosed) as exc:
        # the detail names hosts, users and driver errors: the log gets it, the client a generic text
        log.warning("management call failed: the store is unavailable (%s)", exc)
        raise ServiceUnavailableError("The database is unavailable right now. Retry later.",
                                      code="store_unavailable") from None


#: ``/team/list`` and ``/customer/list`` without ``page_size``: at most this many (docs/keys.md)
DEFAULT_LIST_PAGE_SIZE = 100
#: the largest ``page_size`` a list route accepts
MAX_LIST_PAGE_SIZE = 1000


class PagedList(list[Any]):
    """A JSON array answer (LiteLLM's shape for ``/team/list``, ``/customer/list``) that is one page
    of a longer list: the HTTP layer sends ``headers`` with it (``x-total-count`` & co.), so a
    client that does not page can still tell that it got only part of the list."""

    headers: dict[str, str]

    @classmethod
    def page(cls, items: list[Any], *, total: int, page: int, size: int) -> PagedList:
        answer = cls(items)
        pages = max(1, -(-total // size))
        answer.headers = {"x-total-count": str(total), "x-page": str(page), "x-page-size": str(size),
                          "x-total-pages": str(pages)}
        return answer
