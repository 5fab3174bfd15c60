"""The spend record: one immutable value per admitted request, and the pure function that builds it.

The integration (the request pipeline, after the restructure #9) fills a :class:`RecordInputs`
from the finished request — plain values, no pipeline classes — and calls :func:`build_record`.
The record is what ``spend_logs`` stores (one row per ``request_id``, the ``id`` the client got),
what the outbox carries across a crash, and what ``/spend/logs`` answers.

Decisions (``docs/spend.md`` states them for operators):

* **Money is integer micro-USD** (``spend``), like every amount in the store; the API shows USD.
* ``user`` is the *key's* user id (LiteLLM's ``SpendLogs.user``); the request's ``user`` field (the
  customer) is ``end_user``.
* ``api_base`` never carries a secret: user info (``https://user:pw@host``) and the whole query string
  (``?key=…``, ``?sig=…``) are cut.
* ``metadata`` holds what LiteLLM's row holds: ``user_api_key`` (the key's SHA-256, never the key),
  ``user_api_key_alias``, ``user_api_key_team_id``, ``user_api_key_user_id``,
  ``user_api_key_org_id``, ``spend_logs_metadata`` (team < key < request, request values win; the
  request's comes from ``metadata.spend_logs_metadata`` or, if absent there, the header
  ``x-litellm-spend-logs-metadata``), ``requester_ip_address`` and, for failures,
  ``error_information`` (``error_class``, ``error_code``, ``error_message``, ``llm_provider``).
* ``request_tags`` is the union, in this order and without repeats, of the request's
  ``metadata.tags``, its ``tags``, the header ``x-litellm-tags`` (comma-separated), the key's
  ``metadata.tags`` and the team's ``metadata.tags``. Only strings count.
* ``status`` is ``success`` or ``failure`` (LiteLLM's words). A failure costs what the caller says —
  the integration passes 0 (issue #11: "failures cost 0 but are recorded").
* :func:`provisional_record` is the record written to the outbox at *admission*: a failure with
  the error ``proxy restarted`` and cost 0. If the proxy dies before the request ends, replay
  stores that one, so every admitted request still has exactly one row (see ``outbox.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import orjson

from ..store.schema import daily_spend, spend_logs

__all__ = [
    "PROXY_RESTARTED",
    "ErrorInfo",
    "KeyIdentity",
    "RecordInputs",
    "SpendRecord",
    "build_record",
    "merge_spend_logs_metadata",
    "provisional_record",
    "request_tags",
    "safe_api_base",
]

Status = Literal["success", "failure"]

#: the error of a request the proxy admitted but never finished (it died): see provisional_record
PROXY_RESTARTED = "proxy restarted before the request finished"

_MAX_ERROR_MESSAGE = 2000


@dataclass(frozen=True, slots=True)
class KeyIdentity:
    """Who made the request, as the spend record names it (from the key's auth record).

    ``api_key`` is the key's SHA-256 hex (the master key's hash for master-key calls, ``""`` on an
    open proxy). The metadata mappings are read, never written.
    """

    api_key: str = ""
    key_alias: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    organization_id: str | None = None
    key_metadata: Mapping[str, Any] = field(default_factory=dict)
    team_metadata: Mapping[str, Any] = field(default_factory=dict)
    is_master: bool = False

    @classmethod
    def from_auth_record(cls, record: Any) -> KeyIdentity:
        """From a :class:`trioproxy.store.AuthRecord` (duck-typed: no import cycle)."""
        team = record.team
        return cls(api_key=record.token, key_alias=record.key_alias, user_id=record.user_id,
                   team_id=record.team_id, organization_id=record.organization_id,
                   key_metadata=record.metadata, team_metadata=team.metadata if team is not None else {})

    @classmethod
    def master(cls, master_key_hash: str) -> KeyIdentity:
        return cls(api_key=master_key_hash, is_master=True)


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """Why a request failed (LiteLLM's ``error_information``)."""

    error_class: str
    error_code: str = ""
    error_message: str = ""
    llm_provider: str = ""

    @classmethod
    def from_exception(cls, exc: BaseException, *, status: int | None = None, llm_provider: str = "") -> ErrorInfo:
        code = status if status is not None else getattr(exc, "status_code", None)
        return cls(type(exc).__name__, str(code) if code is not None else "", str(exc), llm_provider)

    def as_dict(self) -> dict[str, str]:
        return {"error_class": self.error_class, "error_code": self.error_code,
                "error_message": self.error_message[:_MAX_ERROR_MESSAGE], "llm_provider": self.llm_provider}


@dataclass(frozen=True, slots=True)
class RecordInputs:
    """Everything the builder needs, as plain values. Times are unix seconds (``time.time()``)."""

    request_id: str
    call_type: str                       # LiteLLM's names: acompletion, atext_completion, aembedding
    start_time: float
    end_time: float
    identity: KeyIdentity = field(default_factory=KeyIdentity)
    model: str = ""                      # what served it (the deployment's model), or what was asked
    model_group: str | None = None       # the model name the client asked for
    custom_llm_provider: str | None = None
    model_id: str | None = None
    api_base: str | None = None          # cleaned by the builder
    status: Status = "success"
    spend_micros: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    completion_start_time: float | None = None
    end_user: str | None = None          # the request's ``user``
    request_metadata: Mapping[str, Any] | None = None   # the body's ``metadata``
    body_tags: Sequence[Any] | None = None              # the body's ``tags``
    header_tags: str | None = None                      # header ``x-litellm-tags``
    header_spend_logs_metadata: str | None = None       # header ``x-litellm-spend-logs-metadata``
    requester_ip_address: str | None = None             # already resolved (use_x_forwarded_for)
    cache_hit: bool = False
    error: ErrorInfo | None = None
    session_id: str | None = None                       # metadata.litellm_session_id / session_id
    reserved_micros: int | None = None                  # the admission estimate (kept in metadata)


@dataclass(frozen=True, slots=True)
class SpendRecord:
    """One row of ``spend_logs``; money in micro-USD, times aware UTC datetimes."""

    request_id: str
    call_type: str
    api_key: str
    spend: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    start_time: datetime
    end_time: datetime
    completion_start_time: datetime | None
    model: str
    model_group: str | None
    model_id: str | None
    custom_llm_provider: str | None
    api_base: str | None
    user: str | None                     # the key's user id
    team_id: str | None
    organization_id: str | None
    end_user: str | None
    requester_ip_address: str | None
    metadata: Mapping[str, Any]
    cache_hit: bool
    request_tags: tuple[str, ...]
    status: Status
    session_id: str | None
    #: ``general_settings.store_prompts_in_spend_logs`` only (else None): the request's messages (or
    #: prompt / input), the answer and the request body, JSON values with the proxy's secrets scrubbed
    messages: Any = None
    response: Any = None
    proxy_server_request: Any = None

    # --- the store's row ----------------------------------------------------------------------------
    def to_row(self) -> dict[str, Any]:
        """Columns of ``spend_logs`` (the store's codec turns datetimes/JSON into the dialect's form).

        NUL characters become U+FFFD, and strings longer than their column (``end_user``,
        ``session_id``, a tag …) are cut to it: PostgreSQL refuses both (SQLite does not), and the
        request's ``user``, tags and spend_logs_metadata come from the client (error messages from
        the upstream) — a refused record would be parked, a request served and never charged."""
        duration = int((self.end_time - self.start_time).total_seconds() * 1000)
        row = {
            "request_id": self.request_id, "call_type": self.call_type, "api_key": self.api_key,
            "spend": self.spend, "total_tokens": self.total_tokens, "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens, "start_time": self.start_time,
            "end_time": self.end_time, "completion_start_time": self.completion_start_time,
            "request_duration_ms": max(0, duration), "model": self.model, "model_id": self.model_id,
            "model_group": self.model_group, "custom_llm_provider": self.custom_llm_provider,
            "api_base": self.api_base, "user_id": self.user, "team_id": self.team_id,
            "organization_id": self.organization_id, "end_user": self.end_user,
            "requester_ip_address": self.requester_ip_address, "metadata": dict(self.metadata),
            "cache_hit": "True" if self.cache_hit else "False", "request_tags": list(self.request_tags),
            "status": self.status, "session_id": self.session_id,
        }
        if self.messages is not None or self.response is not None or self.proxy_server_request is not None:
            row.update(messages=self.messages, response=self.response, proxy_server_request=self.proxy_server_request)
        if _has_nul(row):
            row = _without_nul(row)
        for name, width in _WIDTHS:
            value = row.get(name)
            if value is not None and len(value) > width:
                row[name] = value[:width]
        tags = row["request_tags"]
        if any(len(tag) > _TAG_WIDTH for tag in tags):
            row["request_tags"] = list(dict.fromkeys(tag[:_TAG_WIDTH] for tag in tags))
        return row

    # --- the outbox's bytes ---------------------------------------------------------------------------
    def to_json(self) -> bytes:
        """Compact JSON for the outbox (times as epoch microseconds: exact and fast to parse)."""
        prompts = {} if self.messages is None and self.response is None and self.proxy_server_request is None else {
            "msg": self.messages, "rsp": self.response, "psr": self.proxy_server_request}
        return orjson.dumps({
            **prompts, "i": self.request_id, "ct": self.call_type, "k": self.api_key, "s": self.spend,
            "pt": self.prompt_tokens, "outt": self.completion_tokens, "tt": self.total_tokens,
            "st": _us(self.start_time), "et": _us(self.end_time),
            "cst": _us(self.completion_start_time) if self.completion_start_time else None,
            "m": self.model, "mg": self.model_group, "mid": self.model_id, "p": self.custom_llm_provider,
            "ab": self.api_base, "u": self.user, "t": self.team_id, "o": self.organization_id,
            "eu": self.end_user, "ip": self.requester_ip_address, "md": self.metadata, "ch": self.cache_hit,
            "tg": self.request_tags, "x": self.status, "sid": self.session_id,
        })

    @classmethod
    def from_json(cls, data: bytes | str) -> SpendRecord:
        d = orjson.loads(data)
        return cls(
            request_id=d["i"], call_type=d["ct"], api_key=d["k"], spend=int(d["s"]), prompt_tokens=int(d["pt"]),
            completion_tokens=int(d["outt"]), total_tokens=int(d["tt"]), start_time=_from_us(d["st"]),
            end_time=_from_us(d["et"]), completion_start_time=_from_us(d["cst"]) if d.get("cst") else None,
            model=d["m"], model_group=d.get("mg"), model_id=d.get("mid"), custom_llm_provider=d.get("p"),
            api_base=d.get("ab"), user=d.get("u"), team_id=d.get("t"), organization_id=d.get("o"),
            end_user=d.get("eu"), requester_ip_address=d.get("ip"), metadata=d.get("md") or {},
            cache_hit=bool(d.get("ch")), request_tags=tuple(d.get("tg") or ()), status=d["x"],
            session_id=d.get("sid"), messages=d.get("msg"), response=d.get("rsp"), proxy_server_request=d.get("psr"))

    def with_end_time(self, end: datetime) -> SpendRecord:
        return replace(self, end_time=max(end, self.start_time))

    def interrupted(self, end_time: datetime | None = None) -> SpendRecord:
        """This request as stored when the proxy died before it finished: a failure, cost 0, no
        tokens, error ``proxy restarted`` (see :func:`provisional_record` for why cost 0)."""
        meta = dict(self.metadata)
        meta["error_information"] = _RESTARTED.as_dict()
        end = max(end_time, self.start_time) if end_time is not None else self.start_time
        return replace(self, status="failure", spend=0, prompt_tokens=0, completion_tokens=0, total_tokens=0,
                       end_time=end, metadata=meta)

    def complete(self, *, end_time: float, status: Status = "success", spend_micros: int = 0,
                 prompt_tokens: int = 0, completion_tokens: int = 0, error: ErrorInfo | None = None,
                 completion_start_time: float | None = None, cache_hit: bool | None = None,
                 model: str | None = None, model_id: str | None = None, custom_llm_provider: str | None = None,
                 api_base: str | None = None) -> SpendRecord:
        """The final record from the one built at admission (``SpendWriter.admitted`` returns it):
        the outcome replaces the provisional fields; identity, tags and metadata stay. Cheaper than
        a second :func:`build_record` (measured in ``bench/spend_admission.py``)."""
        metadata = self.metadata
        if error is not None:
            metadata = dict(metadata)
            metadata["error_information"] = error.as_dict()
        prompt = max(0, int(prompt_tokens))
        completion = max(0, int(completion_tokens))
        return SpendRecord(
            self.request_id, self.call_type, self.api_key, max(0, int(spend_micros)), prompt, completion,
            prompt + completion, self.start_time, _utc(max(end_time, self.start_time.timestamp())),
            _utc(completion_start_time) if completion_start_time else self.completion_start_time,
            model or self.model, self.model_group, model_id if model_id is not None else self.model_id,
            custom_llm_provider if custom_llm_provider is not None else self.custom_llm_provider,
            safe_api_base(api_base) if api_base is not None else self.api_base, self.user, self.team_id,
            self.organization_id, self.end_user, self.requester_ip_address, metadata,
            self.cache_hit if cache_hit is None else bool(cache_hit), self.request_tags, status, self.session_id,
            self.messages, self.response, self.proxy_server_request)


#: VARCHAR columns of spend_logs and their widths (the request id is the proxy's own: never cut, a cut
#: one could collide with another request's and be dropped as a duplicate)
_WIDTHS = tuple((c.name, c.type.length) for c in spend_logs.columns
                if getattr(c.type, "length", None) and c.name != "request_id")
#: a tag is a daily_spend entity id
_TAG_WIDTH: int = daily_spend.c.entity_id.type.length  # type: ignore[attr-defined]


def _has_nul(row: Mapping[str, Any]) -> bool:
    """Cheap test first (C-speed substring searches; the metadata through its JSON encoding)."""
    for value in row.values():
        if isinstance(value, str) and "\x00" in value:
            return True
    return any("\x00" in tag for tag in row["request_tags"] if isinstance(tag, str)) \
        or b"\\u0000" in orjson.dumps(row["metadata"], default=str)


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, Mapping):
        return {_without_nul(str(k)): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nul(v) for v in value]
    return value


def _us(value: datetime) -> int:
    return round(value.timestamp() * 1_000_000)


def _from_us(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1_000_000, UTC)


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# --- pieces of the builder (pure) ------------------------------------------------------------------

def safe_api_base(api_base: str | None) -> str | None:
    """``api_base`` without credentials: user info and the query string are removed."""
    if not api_base:
        return api_base or None
    try:
        parts = urlsplit(api_base)
    except ValueError:
        return None
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, Mapping | bytes):
        return [v for v in value if isinstance(v, str)]
    return []


def request_tags(*, request_metadata: Mapping[str, Any] | None, body_tags: Any, header_tags: str | None,
                 key_metadata: Mapping[str, Any] | None, team_metadata: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The union of request, header, key and team tags, first occurrence first."""
    sources: list[str] = []
    if request_metadata:
        found = request_metadata.get("tags")
        if found:
            sources += _strings(found)
    if body_tags:
        sources += _strings(body_tags)
    if header_tags:
        sources += [t.strip() for t in header_tags.split(",") if t.strip()]
    for meta in (key_metadata, team_metadata):
        if meta:
            found = meta.get("tags")
            if found:
                sources += _strings(found)
    if not sources:
        return ()
    return tuple(dict.fromkeys(t for t in sources if t))


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, str) and value.strip():
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _plain(value: Any) -> Any:
    """Frozen JSON (MappingProxyType / tuples from the key cache) → plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def merge_spend_logs_metadata(*, request_metadata: Mapping[str, Any] | None, header: str | None,
                              key_metadata: Mapping[str, Any] | None,
                              team_metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """team < key < request (request values win); the request's from its metadata, else the header."""
    merged: dict[str, Any] = {}
    for meta in (team_metadata, key_metadata):
        if meta:
            found = meta.get("spend_logs_metadata")
            if found:
                merged.update(_as_dict(found))
    found = request_metadata.get("spend_logs_metadata") if request_metadata else None
    from_request = _as_dict(found) if found else {}
    if not from_request and header:
        from_request = _as_dict(header)
    merged.update(from_request)
    return merged


def _session_id(inputs: RecordInputs) -> str | None:
    if inputs.session_id:
        return inputs.session_id
    meta = inputs.request_metadata
    if isinstance(meta, Mapping):
        value = meta.get("litellm_session_id") or meta.get("session_id")
        if isinstance(value, str):
            return value
    return None


def build_record(inputs: RecordInputs) -> SpendRecord:
    """The spend record of a finished request (pure: same inputs, same record)."""
    ident = inputs.identity
    metadata: dict[str, Any] = {
        "user_api_key": ident.api_key,
        "user_api_key_alias": ident.key_alias,
        "user_api_key_team_id": ident.team_id,
        "user_api_key_user_id": ident.user_id,
        "user_api_key_org_id": ident.organization_id,
        "spend_logs_metadata": merge_spend_logs_metadata(
            request_metadata=inputs.request_metadata, header=inputs.header_spend_logs_metadata,
            key_metadata=ident.key_metadata, team_metadata=ident.team_metadata) or None,
        "requester_ip_address": inputs.requester_ip_address,
    }
    if inputs.error is not None:
        metadata["error_information"] = inputs.error.as_dict()
    if inputs.reserved_micros is not None:
        metadata["reserved_spend"] = inputs.reserved_micros / 1_000_000
    prompt = max(0, int(inputs.prompt_tokens))
    completion = max(0, int(inputs.completion_tokens))
    return SpendRecord(
        request_id=inputs.request_id,
        call_type=inputs.call_type,
        api_key=ident.api_key,
        spend=max(0, int(inputs.spend_micros)),
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        start_time=_utc(inputs.start_time),
        end_time=_utc(max(inputs.end_time, inputs.start_time)),
        completion_start_time=_utc(inputs.completion_start_time) if inputs.completion_start_time else None,
        model=inputs.model or inputs.model_group or "",
        model_group=inputs.model_group,
        model_id=inputs.model_id,
        custom_llm_provider=inputs.custom_llm_provider,
        api_base=safe_api_base(inputs.api_base),
        user=ident.user_id,
        team_id=ident.team_id,
        organization_id=ident.organization_id,
        end_user=inputs.end_user or None,
        requester_ip_address=inputs.requester_ip_address,
        metadata=metadata,
        cache_hit=bool(inputs.cache_hit),
        request_tags=request_tags(request_metadata=inputs.request_metadata, body_tags=inputs.body_tags,
                                  header_tags=inputs.header_tags, key_metadata=ident.key_metadata,
                                  team_metadata=ident.team_metadata),
        status=inputs.status,
        session_id=_session_id(inputs),
    )


_RESTARTED = ErrorInfo("ProxyRestarted", "500", PROXY_RESTARTED)


def provisional_record(inputs: RecordInputs) -> SpendRecord:
    """What is stored if the proxy dies mid-request: a failure, cost 0, ``proxy restarted``.

    The outbox's ADMITTED entry holds the record built at admission; replay turns it into this
    (``SpendRecord.interrupted``; ``end_time`` = the outbox file's last write). Cost 0, not the
    reservation estimate: the upstream's answer (and bill) is unknown, failures cost 0 everywhere
    else, and a dead proxy must not charge a budget for an answer nobody received. The estimate
    stays visible as ``metadata.reserved_spend``.
    """
    return build_record(inputs).interrupted()
