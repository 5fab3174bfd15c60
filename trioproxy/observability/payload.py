"""What logging callbacks receive: the seeds' ``kwargs`` and one structured record per request.

Built by the logging sink's workers, after the answer left, from the finished
:class:`~trioproxy.context.RequestContext` (nothing on the request path builds these). Every field
is documented in ``docs/logging.md``; keep the two in step.

Secrets: the upstream key appears only masked (``api_key``), the caller only as the masked
``key_alias`` and the SHA-256 hash, ``api_base`` masked (credentials, query values), and every field
the proxy builds passes the app's :class:`~trioproxy.masking.SecretScrubber`: the whole structured
record, the exception handed over (with its chain of causes), the traceback text, the upstream's
raw answer, the request's parameters and metadata. The prompt and the answer themselves
(``messages``, ``input``, ``complete_input_dict``, the response objects) are passed as they are:
they are the user's content, and scanning them would cost every request its size in regex work
(``hide_secrets`` keeps secrets out of prompts).

The payload holds the proxy's own objects (messages, the response): callbacks get their own
top-level dict, but nested values are shared between callbacks and must be treated as read-only.
"""

from __future__ import annotations

import datetime as _dt
import traceback
from dataclasses import dataclass
from typing import Any

import orjson

from ..config import Deployment
from ..context import RequestContext
from ..masking import SecretScrubber, mask_secret

__all__ = ["LogEvent", "build_kwargs", "standard_logging_object"]

#: body fields that are the prompt itself, not a parameter of the call
_PROMPT_FIELDS = ("messages", "prompt", "input")

PRE_API_CALL = "pre_api_call"
POST_API_CALL = "post_api_call"
SUCCESS = "successful_api_call"
FAILURE = "failed_api_call"


@dataclass(slots=True)
class LogEvent:
    """One thing to tell the callbacks about, captured on the Trio thread in O(1).

    ``kind`` is ``"pre_api_call"`` (one per upstream attempt), ``"success"`` (which also carries the
    ``post_api_call`` event when an upstream answered) or ``"failure"``. For the pre event the
    per-attempt facts (deployment, exact body, attempt number) are captured now, because a retry
    overwrites them on the context; final events read the finished context.
    """

    kind: str
    ctx: RequestContext
    deployment: Deployment | None = None
    upstream_body: dict[str, Any] | None = None
    attempt: int = 0
    at: _dt.datetime | None = None
    #: ordering: the previous event of the same request, which must be delivered first
    after: Any = None
    done: Any = None


def _end_time(ctx: RequestContext) -> _dt.datetime:
    if ctx.end is None:
        return _dt.datetime.now()
    return ctx.start_time + _dt.timedelta(seconds=ctx.end - ctx.start)


def _messages(data: dict[str, Any]) -> Any:
    for name in _PROMPT_FIELDS:
        if name in data:
            return data[name]
    return None


def _litellm_params(ctx: RequestContext, deployment: Deployment | None) -> dict[str, Any]:
    metadata = ctx.data.get("metadata")
    metadata = dict(metadata) if isinstance(metadata, dict) else {}
    # where LiteLLM's callbacks read it; the proxy's value, whatever the client wrote there
    metadata["requester_ip_address"] = ctx.requester_ip_address
    return {
        "metadata": metadata,
        "model_group": ctx.model_group or ctx.requested_model,
        "custom_llm_provider": deployment.provider if deployment else None,
        "api_base": deployment.safe_api_base if deployment else None,
        "stream": ctx.stream,
        "litellm_call_id": ctx.id,
        "cache": ctx.data.get("cache"),
    }


def _base(ctx: RequestContext, event_type: str, deployment: Deployment | None,
          body: dict[str, Any] | None, attempt: int) -> dict[str, Any]:
    source = body if body is not None else {k: v for k, v in ctx.data.items()
                                            if k not in ("metadata", "guardrails", "cache")}
    return {
        "model": deployment.upstream_model if deployment else ctx.requested_model,
        "messages": _messages(ctx.data),
        "optional_params": {k: v for k, v in source.items() if k not in _PROMPT_FIELDS and k != "model"},
        "litellm_params": _litellm_params(ctx, deployment),
        "start_time": ctx.start_time,
        "end_time": None,
        "input": _messages(body) if body is not None else None,
        "api_key": mask_secret(deployment.api_key) if deployment and deployment.api_key else None,
        "additional_args": {"complete_input_dict": body,
                            "api_base": deployment.safe_api_base if deployment else None,
                            "attempt": attempt},
        "log_event_type": event_type,
        "call_type": ctx.route.call_type,
        "litellm_call_id": ctx.id,
        "stream": ctx.stream,
        "user": ctx.data.get("user"),
        "cache_hit": ctx.cache_hit,
        "response_cost": None,
    }


def _original_response(ctx: RequestContext, scrub: SecretScrubber) -> str | None:
    if ctx.upstream_raw is not None:
        return scrub.scrub(ctx.upstream_raw.decode("utf-8", "replace"))
    if ctx.response is not None:
        return scrub.scrub(orjson.dumps(ctx.response, default=str).decode())
    return None


#: fields of the kwargs built by the proxy (small) that may carry a secret: scrubbed. The prompt and
#: the answer are not (see the module's docstring).
_SCRUBBED_FIELDS = ("optional_params", "litellm_params", "user", "model")


def _scrub_fields(kwargs: dict[str, Any], scrub: SecretScrubber) -> dict[str, Any]:
    if scrub:
        for name in _SCRUBBED_FIELDS:
            kwargs[name] = scrub.scrub_value(kwargs[name])
    return kwargs


def traceback_text(error: BaseException, scrub: SecretScrubber) -> str:
    """``traceback_exception``: the error's traceback with its chain, scrubbed (slow: the sink runs it
    in a worker thread and passes the text to :func:`build_kwargs`)."""
    return scrub.scrub("".join(traceback.format_exception(error)))


def build_kwargs(event: LogEvent, event_type: str, scrub: SecretScrubber,
                 record: dict[str, Any] | None, traceback_str: str | None = None) -> dict[str, Any]:
    """The seeds' ``kwargs`` for one event type (see docs/logging.md for each field).

    ``traceback_str``: the failure's :func:`traceback_text`, when the caller formatted it already.
    """
    ctx = event.ctx
    if event.kind == PRE_API_CALL:
        return _scrub_fields(_base(ctx, event_type, event.deployment, event.upstream_body, event.attempt), scrub)
    kwargs = _scrub_fields(_base(ctx, event_type, ctx.deployment, ctx.upstream_body, ctx.upstream_attempts), scrub)
    kwargs["end_time"] = _end_time(ctx)
    kwargs["response_cost"] = ctx.response_cost
    kwargs["standard_logging_object"] = record
    if event.kind == "success":
        kwargs["original_response"] = _original_response(ctx, scrub)
        if ctx.stream:
            kwargs["complete_streaming_response"] = ctx.response
    else:
        error = ctx.error
        kwargs["original_response"] = None
        if error is not None:
            scrub.scrub_error(error)   # the error and its chain of causes: the request is over
            # the error the client got; a crashed handler's own exception is its __cause__ and is
            # part of the traceback text
            kwargs["exception"] = error
            kwargs["traceback_exception"] = (traceback_str if traceback_str is not None
                                             else traceback_text(error, scrub))
        else:  # cannot happen (the pipeline sets ctx.error); a log record must still be complete
            kwargs["exception"] = None
            kwargs["traceback_exception"] = None
    return kwargs


def _tags(data: dict[str, Any]) -> list[str]:
    metadata = data.get("metadata")
    tags = metadata.get("tags") if isinstance(metadata, dict) else None
    if tags is None:
        tags = data.get("tags")
    return [str(t) for t in tags] if isinstance(tags, list) else []


def _timings(ctx: RequestContext) -> dict[str, Any]:
    end = ctx.end if ctx.end is not None else ctx.start
    phases: dict[str, float] = {}
    for _handler, phase, seconds in ctx.hook_timings:
        phases[phase] = phases.get(phase, 0.0) + seconds
    upstream = None
    if ctx.upstream_start is not None and ctx.upstream_end is not None:
        upstream = max(ctx.upstream_end - ctx.upstream_start, 0.0)
    ttft = ctx.first_chunk_at - ctx.start if ctx.first_chunk_at is not None else None
    return {
        "total": end - ctx.start,
        "upstream": upstream,
        "time_to_first_token": ttft,
        "phases": phases,
        "hooks": [{"handler": h, "phase": p, "seconds": s} for h, p, s in ctx.hook_timings],
    }


def standard_logging_object(ctx: RequestContext, scrub: SecretScrubber,
                            tokens: tuple[int | None, int | None]) -> dict[str, Any]:
    """The one structured record of a finished request: no prompt or answer text, secrets masked.

    It is what ``--log-format json`` prints and what ``kwargs["standard_logging_object"]`` holds.
    """
    deployment = ctx.deployment
    error = ctx.error
    user = ctx.user
    metadata = ctx.data.get("metadata")
    prompt_tokens, completion_tokens = tokens
    total = None if prompt_tokens is None and completion_tokens is None else (prompt_tokens or 0) + (completion_tokens or 0)
    # every string of it scrubbed (error_code and error_message echo upstreams; metadata and tags are
    # the client's): the same object back when nothing changed
    return scrub.scrub_value({
        "id": ctx.id,
        "call_type": ctx.route.call_type,
        "endpoint": ctx.route.endpoint,
        "stream": ctx.stream,
        "model": ctx.requested_model,
        # the group that served the request: the requested one, or a fallback's (docs/routing.md)
        "model_group": ctx.model_group or ctx.requested_model,
        "deployment": deployment.label if deployment else None,
        "upstream_model": deployment.upstream_model if deployment else None,
        "provider": deployment.provider if deployment else None,
        "api_base": deployment.safe_api_base if deployment else None,
        "attempts": ctx.upstream_attempts,
        "status": "success" if error is None else "failure",
        "status_code": ctx.status,
        "error_class": type(error).__name__ if error is not None else None,
        "error_code": str(error.code) if error is not None and error.code is not None else None,
        "error_message": str(error.message) if error is not None else None,
        "guardrail": getattr(error, "guardrail", None),
        "cache_hit": ctx.cache_hit,
        "cache_key": ctx.cache_key if ctx.cache_hit else None,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": total,
        "response_cost": ctx.response_cost,
        "cost_source": ctx.cost_source,
        "start_time": ctx.start_time.timestamp(),
        "end_time": _end_time(ctx).timestamp(),
        "timings": _timings(ctx),
        "user": ctx.data.get("user"),
        "user_id": user.user_id if user else None,
        "team_id": user.team_id if user else None,
        "team_alias": user.team_alias if user else None,
        "key_alias": user.key_alias if user else None,
        "key_hash": user.api_key if user else None,
        "requester_ip_address": ctx.requester_ip_address,
        "tags": _tags(ctx.data),
        "metadata": dict(metadata) if isinstance(metadata, dict) else {},
    })
