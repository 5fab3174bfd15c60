"""``guardrail: bedrock`` (or ``bedrock/guardrail``): Amazon Bedrock's ApplyGuardrail API.

As LiteLLM's ``BedrockGuardrail`` (``guardrail_hooks/bedrock_guardrails.py``; docs
``proxy/guardrails/bedrock.md``):

* ``POST {endpoint}/guardrail/{guardrailIdentifier}/version/{guardrailVersion}/apply`` with
  ``{"source": "INPUT" | "OUTPUT", "content": [{"text": {"text": …}}, …]}`` (plus the request's
  ``extra_body`` for this guardrail), SigV4-signed for the service ``bedrock`` by the same botocore
  signer as the Bedrock provider (``upstream/providers/bedrock.py``; in a worker thread: botocore
  may read files or call STS). ``{endpoint}`` is ``https://bedrock-runtime.{aws_region_name}.
  amazonaws.com``, or ``aws_bedrock_runtime_endpoint`` / ``api_base``.
* Credentials: ``aws_access_key_id`` / ``aws_secret_access_key`` / ``aws_session_token``, or
  ``aws_profile_name``, or botocore's standard chain; ``aws_role_name`` (with ``aws_session_name``,
  ``aws_sts_endpoint``) assumes that role through STS first, refreshed before it expires.
  ``aws_region_name``, else ``AWS_REGION_NAME`` / ``AWS_REGION``, else ``us-west-2``.
* ``pre_call`` / ``during_call`` send the request's texts (``source: INPUT``; with
  ``experimental_use_latest_role_message_only: true`` only the last user message); ``post_call``
  sends the answer's texts (``source: OUTPUT``). On streams the assembled answer is checked once
  before ``[DONE]`` (the guardrail machinery's rule; ``stream_mode: buffer`` holds it back).
* ``action: GUARDRAIL_INTERVENED`` with a policy whose action is ``BLOCKED`` → 400
  ``guardrail_violation``: ``Violated guardrail policy: <Bedrock's blockedResponse>``. With
  ``disable_exception_on_block: true`` the blocked response becomes the answer instead (200).
* Interventions that only anonymized (``ANONYMIZED``): with ``mask_request_content`` (pre-call) or
  ``mask_response_content`` (post-call) Bedrock's ``outputs`` replace the texts (by position when
  Bedrock returns one output per text; otherwise its outputs, joined, replace the last text); without
  them the request goes on unchanged, as in LiteLLM.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import threading
from typing import Any
from urllib.parse import quote

import trio

from ...errors import GuardrailViolationError
from ...prompt import TextSlot
from ...upstream.providers.adapter import NativeRequest
from ...upstream.providers.bedrock import AwsSigner
from .service import GuardrailUnavailable, ServiceGuardrail, answer_texts, set_text

__all__ = ["BedrockGuardrail"]

log = logging.getLogger("trioproxy.guardrails.bedrock")

#: botocore signing (and STS) runs in worker threads, at most this many at once
_SIGNING = trio.CapacityLimiter(4)


class RoleSigner(AwsSigner):
    """:class:`AwsSigner` whose credentials come from ``sts:AssumeRole`` (refreshed by botocore)."""

    def __init__(self, region: str, role: str, session_name: str, sts_endpoint: str | None, base: AwsSigner) -> None:
        super().__init__(region, None, None, None, None)
        self.role, self.session_name, self.sts_endpoint, self.base = role, session_name, sts_endpoint, base
        self._sts_lock = threading.Lock()

    def _assume(self) -> dict[str, Any]:
        import botocore.session

        source = self.base._resolve().get_frozen_credentials()
        sts = botocore.session.Session().create_client(
            "sts", region_name=self.region, endpoint_url=self.sts_endpoint, aws_access_key_id=source.access_key,
            aws_secret_access_key=source.secret_key, aws_session_token=source.token)
        answer = sts.assume_role(RoleArn=self.role, RoleSessionName=self.session_name)["Credentials"]
        expiry = answer["Expiration"]
        if isinstance(expiry, _dt.datetime):
            expiry = expiry.isoformat()
        return {"access_key": answer["AccessKeyId"], "secret_key": answer["SecretAccessKey"],
                "token": answer["SessionToken"], "expiry_time": expiry}

    def _resolve(self) -> Any:
        from botocore.credentials import RefreshableCredentials

        with self._sts_lock:
            return RefreshableCredentials.create_from_metadata(self._assume(), self._assume, "sts-assume-role")


def _region(value: str | None) -> str:
    return value or os.environ.get("AWS_REGION_NAME") or os.environ.get("AWS_REGION") or "us-west-2"


class BedrockGuardrail(ServiceGuardrail):
    provider = "bedrock"

    def __init__(self, *, guardrailIdentifier: str | None = None, guardrailVersion: str | None = None,
                 aws_region_name: str | None = None, aws_access_key_id: str | None = None,
                 aws_secret_access_key: str | None = None, aws_session_token: str | None = None,
                 aws_profile_name: str | None = None, aws_role_name: str | None = None,
                 aws_session_name: str | None = None, aws_sts_endpoint: str | None = None,
                 aws_bedrock_runtime_endpoint: str | None = None, api_base: str | None = None,
                 mask_request_content: bool = False, mask_response_content: bool = False,
                 disable_exception_on_block: bool = False,
                 experimental_use_latest_role_message_only: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from ...hooks.loader import HandlerLoadError

        if not guardrailIdentifier or guardrailVersion is None:
            raise HandlerLoadError(f"bedrock guardrail {self.name!r} needs guardrailIdentifier and guardrailVersion "
                                   "(the guardrail's id and version on Bedrock)")
        if bool(aws_access_key_id) != bool(aws_secret_access_key):
            raise HandlerLoadError("aws_access_key_id and aws_secret_access_key go together")
        region = _region(aws_region_name)
        endpoint = api_base or aws_bedrock_runtime_endpoint or os.environ.get("AWS_BEDROCK_RUNTIME_ENDPOINT") \
            or f"https://bedrock-runtime.{region}.amazonaws.com"
        self.url = (f"{endpoint.rstrip('/')}/guardrail/{quote(str(guardrailIdentifier), safe='')}"
                    f"/version/{quote(str(guardrailVersion), safe='')}/apply")
        signer = AwsSigner(region, aws_access_key_id, aws_secret_access_key, aws_session_token, aws_profile_name)
        self.signer = RoleSigner(region, aws_role_name, aws_session_name or "litellm-bedrock-guardrail",
                                 aws_sts_endpoint, signer) if aws_role_name else signer
        self.mask_request = bool(mask_request_content)
        self.mask_response = bool(mask_response_content)
        self.no_exception = bool(disable_exception_on_block)
        self.latest_only = bool(experimental_use_latest_role_message_only)

    # -- the API ----------------------------------------------------------------------------------
    async def apply(self, source: str, texts: list[str], data: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"source": source, "content": [{"text": {"text": t}} for t in texts]}
        body.update(self.get_guardrail_dynamic_request_body_params(data))
        import orjson

        request = NativeRequest("POST", self.url, {"content-type": "application/json"}, orjson.dumps(body))
        try:
            signed = await trio.to_thread.run_sync(self.signer.sign, request, limiter=_SIGNING)
        except Exception as exc:  # botocore: no credentials, STS refused, …
            raise GuardrailUnavailable(f"signing failed: {type(exc).__name__}") from None
        answer = await self.post_json(self.url, None, signed.headers, content=signed.body)
        if not isinstance(answer, dict):
            raise GuardrailUnavailable("its answer is not a JSON object")
        return answer

    @staticmethod
    def _blocked(answer: dict[str, Any]) -> bool:
        """An intervention that blocked (some policy's action ``BLOCKED``), not only anonymized."""
        if answer.get("action") != "GUARDRAIL_INTERVENED":
            return False

        def walk(node: Any) -> bool:
            if isinstance(node, dict):
                return node.get("action") == "BLOCKED" or any(walk(v) for v in node.values())
            if isinstance(node, list):
                return any(walk(v) for v in node)
            return False

        assessments = answer.get("assessments")
        return walk(assessments) if assessments else True

    @staticmethod
    def _outputs(answer: dict[str, Any]) -> list[str]:
        outputs = answer.get("outputs") or answer.get("output") or []
        return [o["text"] for o in outputs if isinstance(o, dict) and isinstance(o.get("text"), str)]

    def _violation(self, answer: dict[str, Any]) -> GuardrailViolationError:
        blocked = self._outputs(answer)
        reason = answer.get("blockedResponse") or (blocked[0] if blocked else None)
        log.info("guardrail %s: Bedrock guardrail intervened", self.name)
        return GuardrailViolationError(f"Violated guardrail policy: {reason}" if reason else "Violated guardrail policy",
                                       guardrail=self.name)

    # -- request ----------------------------------------------------------------------------------
    def _request_slots(self, data: dict[str, Any]) -> list[TextSlot]:
        slots = self.request_slots(data)
        if self.latest_only:
            messages = data.get("messages")
            users = [i for i, m in enumerate(messages or ()) if isinstance(m, dict) and m.get("role") == "user"]
            if users:
                slots = [s for s in slots if s.message == users[-1]]
        return slots

    async def _check_request(self, data: dict[str, Any], *, may_change: bool) -> Any:
        slots = self._request_slots(data)
        if not slots:
            return None
        answer = await self.checked(lambda: self.apply("INPUT", [s.text for s in slots], data))
        if answer is None or answer.get("action") != "GUARDRAIL_INTERVENED":
            return None
        if self._blocked(answer):
            if self.no_exception and may_change:
                outputs = self._outputs(answer)
                return answer.get("blockedResponse") or (outputs[0] if outputs else "")
            raise self._violation(answer)
        if may_change and self.mask_request:
            _replace([(s.container, s.key) for s in slots], self._outputs(answer), lambda c, k, t: _slot_set(c, k, t))
            return data
        return None

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> Any:
        return await self._check_request(data, may_change=True)

    async def async_moderation_hook(self, data: dict, user_api_key_dict: Any, call_type: str) -> None:
        await self._check_request(data, may_change=False)

    # -- answer -----------------------------------------------------------------------------------
    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: Any, response: Any) -> Any:
        slots = [s for s in answer_texts(response) if s[2].strip()]
        if not slots:
            return None
        answer = await self.checked(lambda: self.apply("OUTPUT", [t for _, _, t in slots], data))
        if answer is None or answer.get("action") != "GUARDRAIL_INTERVENED":
            return None
        streamed = bool(data.get("stream"))
        if self._blocked(answer):
            if self.no_exception and not streamed:
                outputs = self._outputs(answer)
                set_text(slots[0][0], slots[0][1], answer.get("blockedResponse") or (outputs[0] if outputs else ""))
                return response
            raise self._violation(answer)
        if self.mask_response and not streamed:
            _replace([(c, k) for c, k, _ in slots], self._outputs(answer), set_text)
            return response
        if self.mask_response:
            log.warning("guardrail %s: Bedrock masked a streamed answer; chunks already sent cannot be rewritten",
                        self.name)
        return None


def _slot_set(container: Any, key: Any, text: str) -> None:
    container[key] = text


def _replace(places: list[tuple[Any, Any]], outputs: list[str], setter: Any) -> None:
    """Bedrock's masked ``outputs`` in place of the texts sent (module docstring)."""
    if not outputs:
        return
    if len(outputs) == len(places):
        for (container, key), text in zip(places, outputs, strict=True):
            setter(container, key, text)
        return
    container, key = places[-1]
    setter(container, key, "\n".join(outputs))
