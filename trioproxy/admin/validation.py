"""Validating management request bodies and query strings: precise 400s, nothing guessed.

Each endpoint declares its fields as ``{name: validator}``. :func:`validate` refuses unknown fields
(naming all of them), a value of the wrong type (naming the field, never echoing the value — it may
be a key), and returns the converted values of the fields that were *sent* (so an update changes
only those). Validators convert on the way: money → integer micro-USD, durations → ``Duration``.

The validators of text, lists and JSON objects also check what the store can hold
(:func:`storable`): no NUL character in any text (PostgreSQL's text and JSONB refuse it), JSON nested
at most :data:`MAX_JSON_DEPTH` levels (orjson writes at most 254), integers within 64 bits, lists
and objects of at most :data:`MAX_LIST` entries (PostgreSQL binds at most 65,535 parameters per
statement). Without these checks such values reached the driver and came back as an unhandled
exception (a 500, or a 503 "database unavailable") instead of a 400 naming the field. Fields
validated as-is (``lambda v: v``) are not checked: they are parsed by the operation itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from ..access.catalog import RouteCatalog, expand_route_list
from ..store.durations import Duration, InvalidDuration, parse_duration
from ..store.money import to_micros
from ..store.views import model_budget_from_request
from .errors import bad_request

__all__ = [
    "Invalid",
    "boolean",
    "date_or_time",
    "duration",
    "integer",
    "json_object",
    "members",
    "model_budget",
    "model_limits",
    "money",
    "one_of",
    "optional",
    "route_list",
    "storable",
    "string",
    "string_list",
    "validate",
]

#: how deep a JSON value (``metadata``, ``config``, …) may nest
MAX_JSON_DEPTH = 32
#: the most entries a list may have (ids to delete, models, tags, …)
MAX_LIST = 10_000
#: the largest integer a ``BIGINT`` column holds
MAX_INT = 2**63 - 1
#: the largest page number (a page × size offset stays far inside ``BIGINT``)
MAX_PAGE = 2**31 - 1


class Invalid(ValueError):
    """A field's value is wrong; the message says what was expected."""


def storable(value: Any, depth: int = 0) -> None:
    """Raise :class:`Invalid` for a value the store cannot hold (see the module docstring)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise Invalid("text must not contain NUL characters (\\u0000)")
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if not -MAX_INT - 1 <= value <= MAX_INT:
            raise Invalid("integers must fit in 64 bits")
    elif isinstance(value, dict | list | tuple):
        if depth >= MAX_JSON_DEPTH:
            raise Invalid(f"nested deeper than {MAX_JSON_DEPTH} levels")
        if len(value) > MAX_LIST:
            raise Invalid(f"at most {MAX_LIST} entries")
        items = (item for pair in value.items() for item in pair) if isinstance(value, dict) else value
        for item in items:
            storable(item, depth + 1)


Validator = Callable[[Any], Any]


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def optional(validator: Validator) -> Validator:
    def check(value: Any) -> Any:
        return None if value is None else validator(value)

    check.__doc__ = validator.__doc__
    return check


def string(value: Any) -> str:
    """a string"""
    if not isinstance(value, str):
        raise Invalid(f"expected a string, got {_type_name(value)}")
    storable(value)
    return value


def integer(minimum: int = 0) -> Validator:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float) or (
                isinstance(value, float) and not value.is_integer()):
            raise Invalid(f"expected an integer, got {_type_name(value)}")
        if value < minimum:
            raise Invalid(f"must be at least {minimum}")
        if value > MAX_INT:
            raise Invalid(f"must be at most {MAX_INT}")
        return int(value)

    return check


def money(value: Any) -> int:
    """a non-negative number of USD → micro-USD"""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(f"expected a number (USD), got {_type_name(value)}")
    if value < 0:
        raise Invalid("must not be negative")
    try:
        micros = to_micros(value)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    assert micros is not None
    return micros


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"expected true or false, got {_type_name(value)}")
    return value


def string_list(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Invalid(f"expected a list of strings, got {_type_name(value)}")
    storable(value)
    return list(value)


def json_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"expected an object, got {_type_name(value)}")
    storable(value)
    return dict(value)


_ROUTE_CATALOG = RouteCatalog()


def route_list(value: Any) -> list[str]:
    """A key's ``allowed_routes``: each entry a route (``/chat/completions``, ``/audit/{id}``,
    ``/api/*``) or a route group (``llm_api_routes``, ``LiteLLMRoutes.info_routes``), checked with
    the access layer's own parser so that what is stored is what it will enforce."""
    routes = string_list(value)
    problems: list[str] = []
    expand_route_list(routes, "allowed_routes", _ROUTE_CATALOG, problems, prefix_match=True)
    if problems:
        raise Invalid("; ".join(problems))
    return routes


def duration(value: Any) -> Duration:
    try:
        return parse_duration(value)
    except InvalidDuration as exc:
        raise Invalid(str(exc)) from None


def one_of(*choices: str) -> Validator:
    def check(value: Any) -> str:
        if value not in choices:
            raise Invalid(f"expected one of {', '.join(repr(c) for c in choices)}")
        return value

    return check


def model_limits(value: Any) -> dict[str, int]:
    """``model_rpm_limit`` / ``model_tpm_limit``: ``{model: a non-negative integer}``"""
    obj = json_object(value)
    check = integer(0)
    out: dict[str, int] = {}
    for model, limit in obj.items():
        try:
            out[model] = check(limit)
        except Invalid as exc:
            raise Invalid(f"limit of {model!r}: {exc}") from None
    return out


def model_budget(value: Any) -> dict[str, Any]:
    obj = json_object(value)
    try:
        return model_budget_from_request(obj)
    except ValueError as exc:
        raise Invalid(str(exc)) from None


def _member(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"expected a member object, got {_type_name(value)}")
    unknown = set(value) - {"role", "user_id", "user_email"}
    if unknown:
        raise Invalid(f"unknown member field(s): {', '.join(sorted(unknown))}")
    role = value.get("role", "user")
    if role not in ("admin", "user"):
        raise Invalid("member role must be 'admin' or 'user'")
    user_id, email = value.get("user_id"), value.get("user_email")
    if user_id is None and email is None:
        raise Invalid("a member needs 'user_id' or 'user_email'")
    for name, v in (("user_id", user_id), ("user_email", email)):
        if v is not None and not isinstance(v, str):
            raise Invalid(f"member {name} must be a string")
    return {"role": role, "user_id": user_id, "user_email": email}


def members(value: Any) -> list[dict[str, Any]]:
    """a member object or a list of them"""
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise Invalid(f"expected a member object or a list of them, got {_type_name(value)}")
    storable(value)
    return [_member(v) for v in value]


def date_or_time(value: Any) -> datetime:
    """``2024-06-06`` or an ISO 8601 time (UTC when no offset is given)"""
    if not isinstance(value, str):
        raise Invalid(f"expected a date (YYYY-MM-DD) or an ISO 8601 time, got {_type_name(value)}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        # in UTC here: 9999-12-31T23:00-05:00 has no UTC time, and the store compares in UTC
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise Invalid("expected a date (YYYY-MM-DD) or an ISO 8601 time") from None


def validate(data: Any, fields: Mapping[str, Validator], where: str, *,
             required: Iterable[str] = ()) -> dict[str, Any]:
    """The sent fields, converted; 400 naming unknown fields, missing or mistyped ones."""
    if not isinstance(data, Mapping):
        raise bad_request(f"{where}: the request body must be a JSON object")
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise bad_request(
            f"{where}: unknown field(s) {', '.join(repr(k) for k in unknown)}. "
            f"Known fields: {', '.join(sorted(fields))}", param=str(unknown[0]))
    for name in required:
        if data.get(name) is None:
            raise bad_request(f"{where}: '{name}' is required", param=name)
    out: dict[str, Any] = {}
    for name, value in data.items():
        try:
            out[name] = fields[name](value)
        except Invalid as exc:
            raise bad_request(f"{where}: invalid '{name}': {exc}", param=name) from None
    return out


def query_int(value: Any, name: str, where: str, *, default: int, minimum: int = 1,
              maximum: int | None = None) -> int:
    """A page number or size from a query string (a string) or a body (a number)."""
    if value is None or value == "":
        return default
    try:
        number = int(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    upper = maximum if maximum is not None else MAX_PAGE
    if number is None or number < minimum or number > upper:
        raise bad_request(f"{where}: '{name}' must be an integer of at least {minimum} and at most {upper}",
                          param=name)
    return number


def query_bool(value: Any, name: str, where: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if str(value).lower() in ("true", "1", "yes"):
        return True
    if str(value).lower() in ("false", "0", "no", ""):
        return False
    raise bad_request(f"{where}: '{name}' must be true or false", param=name)
