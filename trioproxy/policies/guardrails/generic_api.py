"""``guardrail: generic_guardrail_api``: any service implementing LiteLLM's Generic Guardrail API.

As LiteLLM's ``GenericGuardrailAPI`` (``guardrail_hooks/generic_guardrail_api/``; contract in its docs,
``adding_provider/generic_guardrail_api.md``): ``POST {api_base}/beta/litellm_basic_guardrail_api``
(appended unless ``api_base`` ends with it; ``api_base`` default ``GENERIC_GUARDRAIL_API_BASE``) with
``{"texts", "input_type": "request" | "response", "structured_messages", "tools", "request_data",
"additional_provider_specific_params", "litellm_call_id", "litellm_trace_id"}``; static ``headers``
and ``api_key`` (as ``x-api-key``) go with every call. The answer's ``action``:

* ``BLOCKED`` → 400 ``guardrail_violation``: ``Content blocked by guardrail: <blocked_reason>``;
* ``GUARDRAIL_INTERVENED`` with ``texts`` → the texts replace the request's (pre-call) or the
  answer's (post-call) by position;
* ``NONE`` → unchanged.

It is built on ``apply_guardrail`` (LiteLLM's own design), so the guardrail machinery's
``apply_guardrail`` rules give its behaviour in every mode (``hooks/apply_guardrail.py``: which texts,
how they are written back, streams checked once assembled). ``request_data`` carries the caller's
``user_api_key_*`` fields found in the request's ``metadata``. ``extra_headers`` (client headers to
forward) is not supported: the hooks do not see the client's headers (logged at startup).
``unreachable_fallback`` is LiteLLM's setting of this guardrail (``service.py``: here every outage
follows it; LiteLLM applies it to network errors and 502/503/504 only).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from ...errors import GuardrailViolationError
from ...hooks.loader import HandlerLoadError
from .service import GuardrailUnavailable, ServiceGuardrail

__all__ = ["GenericGuardrailAPI"]

log = logging.getLogger("trioproxy.guardrails.generic_api")

PATH = "/beta/litellm_basic_guardrail_api"
_METADATA_FIELDS = ("user_api_key_hash", "user_api_key_alias", "user_api_key_user_id", "user_api_key_user_email",
                    "user_api_key_team_id", "user_api_key_team_alias", "user_api_key_end_user_id",
                    "user_api_key_org_id")


class GenericGuardrailAPI(ServiceGuardrail):
    provider = "generic_guardrail_api"

    def __init__(self, *, api_base: str | None = None, api_key: str | None = None,
                 headers: dict[str, Any] | None = None,
                 additional_provider_specific_params: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        base = api_base or os.environ.get("GENERIC_GUARDRAIL_API_BASE")
        if not base:
            raise HandlerLoadError(f"generic_guardrail_api guardrail {self.name!r} needs api_base "
                                   "(or the environment variable GENERIC_GUARDRAIL_API_BASE)")
        self.url = base if base.endswith(PATH) else base.rstrip("/") + PATH
        if headers is not None and not isinstance(headers, dict):
            raise HandlerLoadError("headers must be a mapping of header name → value")
        self.headers = {str(k): str(v) for k, v in (headers or {}).items()}
        if api_key:
            self.headers.setdefault("x-api-key", api_key)
        self.params = dict(additional_provider_specific_params or {})

    async def apply_guardrail(self, inputs: dict[str, Any], request_data: dict, input_type: str,
                              logging_obj: Any = None) -> dict[str, Any]:
        texts = list(inputs.get("texts") or [])
        metadata = request_data.get("metadata") if isinstance(request_data, dict) else None
        caller = {k: metadata[k] for k in _METADATA_FIELDS if isinstance(metadata, dict) and metadata.get(k)}
        body: dict[str, Any] = {
            "litellm_call_id": None, "litellm_trace_id": None, "texts": texts, "request_data": caller,
            "images": None, "tools": inputs.get("tools"), "structured_messages": inputs.get("structured_messages"),
            "additional_provider_specific_params": {**self.params,
                                                    **self.get_guardrail_dynamic_request_body_params(request_data)},
            "input_type": input_type,
        }

        async def call() -> Any:
            return await self.post_json(self.url, body, self.headers)

        answer = await self.checked(call)
        if answer is None:
            return inputs
        if not isinstance(answer, dict) or answer.get("action") not in ("BLOCKED", "NONE", "GUARDRAIL_INTERVENED"):
            raise self._unusable()
        if answer["action"] == "BLOCKED":
            reason = answer.get("blocked_reason") or "Content violates policy"
            log.info("guardrail %s: the guardrail API blocked the %s", self.name, input_type)
            raise GuardrailViolationError(f"Content blocked by guardrail: {reason}", guardrail=self.name)
        new = answer.get("texts")
        if isinstance(new, list) and new and all(isinstance(t, str) for t in new):
            if len(new) != len(texts):
                raise self._unusable()
            inputs["texts"] = new
        return inputs

    def _unusable(self) -> Exception:
        """An answer outside the contract is an outage (503), not a verdict."""
        from ...errors import ServiceUnavailableError

        problem = GuardrailUnavailable("its answer does not follow the Generic Guardrail API contract")
        log.warning("guardrail %s: %s", self.name, problem)
        return ServiceUnavailableError(
            f"Guardrail {self.name!r} could not check the request: the generic_guardrail_api service is "
            f"unavailable ({problem}).", code="guardrail_unavailable")
