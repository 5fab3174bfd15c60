"""``guardrail: presidio``: PII masking with Microsoft Presidio's analyzer and anonymizer APIs.

As LiteLLM's ``_OPTIONAL_PresidioPIIMasking`` (``litellm/proxy/guardrails/guardrail_hooks/presidio.py``):

* each text is sent to ``POST {PRESIDIO_ANALYZER_API_BASE}/analyze`` as ``{"text", "language"}``
  (plus ``"entities"``: the keys of ``pii_entities_config``, ``"ad_hoc_recognizers"``: the JSON of
  ``presidio_ad_hoc_recognizers``, and the request's ``extra_body`` for this guardrail);
* detections below ``presidio_score_thresholds`` (per entity, or ``ALL``) or in
  ``presidio_entities_deny_list`` are dropped;
* an entity whose ``pii_entities_config`` action is ``BLOCK`` rejects the request (400
  ``guardrail_violation``: ``Blocked PII entity detected: CREDIT_CARD by Guardrail: <name>.``);
* the rest go to ``POST {PRESIDIO_ANONYMIZER_API_BASE}/anonymize`` as ``{"text", "analyzer_results"}``
  and Presidio's anonymized text (``<PERSON>``) replaces the original;
* ``output_parse_pii: true``: entities become numbered tokens (``<PERSON_1>``) and the original
  values are put back into the answer (post-call; on streams as the tokens pass, a token split over
  chunks included), so the model never sees the PII and the user never sees the tokens.
  LiteLLM keeps that mapping in the request's ``metadata.pii_tokens``, where every logging callback
  would receive the original PII; here it stays in this object, keyed by an opaque reference in
  ``metadata.presidio_pii_ref``, and is dropped when the answer is done (at most ``MAX_PENDING``
  requests' mappings are kept; older ones are dropped first).
* ``presidio_language`` (default ``en``), or per request ``metadata.guardrail_config.language``.

Modes: ``pre_call`` masks (or blocks) the request; ``during_call`` only blocks (``BLOCK`` entities:
a request already sent cannot be masked); ``post_call`` masks (or blocks) the answer — on a stream
the answer is held and sent masked as one piece, as LiteLLM does with ``apply_to_output``.
``presidio_filter_scope`` (``input`` | ``output`` | ``both``) limits which side is checked.
``logging_only`` masks only what the logging callbacks receive (``logging_only.py``), on every request.
Outages follow ``service.py`` (503, or ``unreachable_fallback: fail_open``); LiteLLM lets a
request through unmasked when the analyzer answers an HTTP error and no entity is configured — here
it is an outage like any other.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

from ...errors import GuardrailViolationError
from ...hooks.loader import HandlerLoadError
from .logging_only import mask_kwargs
from .service import GuardrailUnavailable, ServiceGuardrail, answer_texts, gather_limited, set_text

__all__ = ["PresidioGuardrail"]

log = logging.getLogger("trioproxy.guardrails.presidio")

MAX_PENDING = 10_000
_REF = "presidio_pii_ref"
_refs = itertools.count(1)


def _api_base(value: str | None, variable: str, name: str) -> str:
    base = value or os.environ.get(variable)
    if not base:
        raise HandlerLoadError(f"presidio guardrail {name!r} needs the environment variable {variable} "
                               f"(or presidio_{variable.split('_')[1].lower()}_api_base), the URL of the Presidio API")
    if not base.startswith(("http://", "https://")):
        base = "http://" + base      # LiteLLM's rule: a bare host is on a private network
    return base.rstrip("/") + "/"


class PresidioGuardrail(ServiceGuardrail):
    provider = "presidio"
    supported_modes = ("pre_call", "during_call", "post_call", "logging_only")

    def __init__(self, *, presidio_analyzer_api_base: str | None = None,
                 presidio_anonymizer_api_base: str | None = None, output_parse_pii: bool = False,
                 apply_to_output: bool = False, presidio_ad_hoc_recognizers: str | None = None,
                 pii_entities_config: dict[str, str] | None = None, presidio_language: str | None = None,
                 presidio_score_thresholds: dict[str, float] | None = None,
                 presidio_entities_deny_list: list[str] | None = None, presidio_filter_scope: str = "both",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        name = self.name
        self.analyzer = _api_base(presidio_analyzer_api_base, "PRESIDIO_ANALYZER_API_BASE", name)
        self.anonymizer = _api_base(presidio_anonymizer_api_base, "PRESIDIO_ANONYMIZER_API_BASE", name)
        self.output_parse_pii = bool(output_parse_pii)
        self.apply_to_output = bool(apply_to_output)
        self.entities: dict[str, str] = {}
        for entity, action in (pii_entities_config or {}).items():
            action = str(action).upper()
            if action not in ("MASK", "BLOCK"):
                raise HandlerLoadError(f"pii_entities_config.{entity}: the action is MASK or BLOCK, got {action!r}")
            self.entities[str(entity)] = action
        self.language = presidio_language or "en"
        self.thresholds = {str(k): float(v) for k, v in (presidio_score_thresholds or {}).items()}
        self.deny = {str(e) for e in presidio_entities_deny_list or ()}
        if presidio_filter_scope not in ("input", "output", "both"):
            raise HandlerLoadError(f"presidio_filter_scope is input, output or both, got {presidio_filter_scope!r}")
        self.scope = presidio_filter_scope
        self.ad_hoc: Any = None
        if presidio_ad_hoc_recognizers:
            path = Path(presidio_ad_hoc_recognizers)
            if not path.is_absolute() and self.base_dir is not None:
                path = self.base_dir / path
            try:
                self.ad_hoc = json.loads(path.read_text(encoding="utf-8"))
            except OSError as exc:
                raise HandlerLoadError(f"presidio_ad_hoc_recognizers: cannot read {str(path)!r} "
                                       f"({exc.strerror or exc})") from None
            except json.JSONDecodeError as exc:
                raise HandlerLoadError(f"presidio_ad_hoc_recognizers: {str(path)!r} is not JSON ({exc})") from None
        # as LiteLLM: unmasking (or masking) the answer makes the guardrail run after the call too
        modes = self._modes()
        if (self.output_parse_pii or self.apply_to_output) and "post_call" not in modes:
            self.event_hook = [*modes, "post_call"]
        #: request reference → numbered token → original text (output_parse_pii)
        self._pending: OrderedDict[str, dict[str, str]] = OrderedDict()

    @property
    def implied_modes(self) -> tuple[str, ...]:
        """Modes the guardrail runs in beyond the config's (``hooks/assembly.py`` adds their hooks)."""
        return tuple(self._modes())

    # -- Presidio ---------------------------------------------------------------------------------
    def _language(self, data: dict[str, Any]) -> str:
        metadata = data.get("metadata")
        config = metadata.get("guardrail_config") if isinstance(metadata, dict) else None
        language = config.get("language") if isinstance(config, dict) else None
        return language if isinstance(language, str) and language else self.language

    async def _analyze(self, text: str, data: dict[str, Any]) -> list[dict[str, Any]]:
        payload: dict[str, Any] = {"text": text, "language": self._language(data)}
        if self.ad_hoc is not None:
            payload["ad_hoc_recognizers"] = self.ad_hoc
        if self.entities:
            payload["entities"] = list(self.entities)
        payload.update(self.get_guardrail_dynamic_request_body_params(data))
        found = await self.post_json(self.analyzer + "analyze", payload)
        if isinstance(found, dict) and "error" in found:
            raise GuardrailUnavailable("the analyzer answered an error")
        if not isinstance(found, list):
            raise GuardrailUnavailable("the analyzer's answer is not a list of results")
        kept = []
        for item in found:
            if not isinstance(item, dict) or not isinstance(item.get("entity_type"), str):
                continue
            entity = item["entity_type"]
            if entity in self.deny:
                continue
            threshold = self.thresholds.get(entity, self.thresholds.get("ALL"))
            score = item.get("score")
            if threshold is not None and (not isinstance(score, int | float) or score < threshold):
                continue
            kept.append(item)
        return kept

    def _block(self, results: list[dict[str, Any]]) -> None:
        for item in results:
            if self.entities.get(item["entity_type"]) == "BLOCK":
                log.info("guardrail %s: blocked PII entity %s", self.name, item["entity_type"])
                raise GuardrailViolationError(
                    f"Blocked PII entity detected: {item['entity_type']} by Guardrail: {self.name}.",
                    guardrail=self.name)

    async def check_pii(self, text: str, data: dict[str, Any], tokens: dict[str, str] | None) -> str:
        """The text masked (``tokens``: numbered tokens, recorded there); raises on BLOCK entities."""
        if not text.strip():
            return text
        results = await self._analyze(text, data)
        self._block(results)
        if not results:
            return text
        answer = await self.post_json(self.anonymizer + "anonymize", {"text": text, "analyzer_results": results})
        if not isinstance(answer, dict) or not isinstance(answer.get("text"), str):
            raise GuardrailUnavailable("the anonymizer's answer has no text")
        if tokens is None:
            return answer["text"]
        # numbered tokens from the analyzer's positions (they index the original text)
        spans = sorted((r for r in results if isinstance(r.get("start"), int) and isinstance(r.get("end"), int)),
                       key=lambda r: r["start"])
        out, last, seq = [], 0, len(tokens)
        for r in spans:
            if r["start"] < last:
                continue        # overlapping detections: the first one wins
            seq += 1
            token = f"<{r['entity_type']}_{seq}>"
            tokens[token] = text[r["start"]:r["end"]]
            out += [text[last:r["start"]], token]
            last = r["end"]
        out.append(text[last:])
        return "".join(out)

    # -- request ----------------------------------------------------------------------------------
    def _tokens_for(self, data: dict[str, Any]) -> dict[str, str]:
        metadata = data.setdefault("metadata", {})
        if not isinstance(metadata, dict):
            metadata = data["metadata"] = {}
        ref = metadata.get(_REF)
        if not isinstance(ref, str) or ref not in self._pending:
            ref = f"{id(self):x}-{next(_refs)}"
            metadata[_REF] = ref
            self._pending[ref] = {}
            while len(self._pending) > MAX_PENDING:
                self._pending.popitem(last=False)
        return self._pending[ref]

    def _take_tokens(self, data: dict[str, Any]) -> dict[str, str]:
        metadata = data.get("metadata")
        ref = metadata.get(_REF) if isinstance(metadata, dict) else None
        return self._pending.pop(ref, {}) if isinstance(ref, str) else {}

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> Any:
        if "pre_call" not in self._modes() or self.scope == "output":
            return None
        slots = self.request_slots(data)
        if not slots:
            return None
        tokens = self._tokens_for(data) if self.output_parse_pii else None

        async def mask_all() -> list[str]:
            return await gather_limited(lambda s: self.check_pii(s.text, data, tokens), slots)

        masked = await self.checked(mask_all)
        if masked is None:
            return None
        changed = False
        for slot, text in zip(slots, masked, strict=True):
            if text != slot.text:
                slot.replace(text)
                changed = True
        return data if changed else None

    async def async_moderation_hook(self, data: dict, user_api_key_dict: Any, call_type: str) -> None:
        if self.scope == "output":
            return
        texts = [s.text for s in self.request_slots(data)]

        async def analyze_all() -> None:
            for results in await gather_limited(lambda t: self._analyze(t, data), texts):
                self._block(results)

        await self.checked(analyze_all)

    async def async_logging_hook(self, kwargs: dict[str, Any], result: Any, call_type: str) -> tuple[dict, Any]:
        """``logging_only``: the logged messages and answer, masked (copies; ``logging_only.py``)."""
        data = kwargs.get("litellm_params", {}).get("metadata") or {}

        async def mask(texts: list[str], _data: dict[str, Any]) -> list[str]:
            masked = await self._mask_texts(texts, {"metadata": data})
            if masked is None:     # unreachable_fallback: fail_open — logged as it is
                return texts
            return masked

        return await mask_kwargs(kwargs, result, mask, {})

    # -- answer -----------------------------------------------------------------------------------
    def _masks_output(self) -> bool:
        return self.scope != "input" and (self.apply_to_output or not self.output_parse_pii)

    async def _mask_texts(self, texts: list[str], data: dict[str, Any]) -> list[str] | None:
        async def mask_all() -> list[str]:
            return await gather_limited(lambda t: self.check_pii(t, data, None), texts)
        return await self.checked(mask_all)

    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: Any, response: Any) -> Any:
        if data.get("stream"):
            return None                 # the iterator hook rewrote the chunks
        slots = answer_texts(response)
        if self.output_parse_pii and not self.apply_to_output:
            tokens = self._take_tokens(data)
            changed = False
            for container, key, text in slots:
                new = unmask(text, tokens)
                if new != text:
                    set_text(container, key, new)
                    changed = True
            return response if changed else None
        if not self._masks_output() or not slots:
            return None
        masked = await self._mask_texts([text for _, _, text in slots], data)
        if masked is None:
            return None
        for (container, key, _), text in zip(slots, masked, strict=True):
            set_text(container, key, text)
        return response

    async def async_post_call_streaming_iterator_hook(self, user_api_key_dict: Any, response: Any,
                                                      request_data: dict) -> Any:
        if self.output_parse_pii and not self.apply_to_output:
            tokens = self._take_tokens(request_data)
            async for chunk in unmask_stream(response, tokens):
                yield chunk
            return
        if not self._masks_output():
            async for chunk in response:
                yield chunk
            return
        chunks = [chunk async for chunk in response]
        texts = _joined(chunks)
        indexes = sorted(texts)
        masked = await self._mask_texts([texts[i] for i in indexes], request_data)
        if masked is None:
            for chunk in chunks:
                yield chunk
            return
        for chunk in _with_texts(chunks, dict(zip(indexes, masked, strict=True))):
            yield chunk


# -- tokens in answers ----------------------------------------------------------------------------
_PARTIAL = re.compile(r"<[A-Z0-9_]*$")


def unmask(text: str, tokens: dict[str, str]) -> str:
    for token, original in tokens.items():
        if token in text:
            text = text.replace(token, original)
    return text


def _delta(choice: dict[str, Any]) -> dict[str, Any] | None:
    delta = choice.get("delta")
    return delta if isinstance(delta, dict) else None


async def unmask_stream(chunks: Any, tokens: dict[str, str]) -> Any:
    """Chunks with the numbered tokens replaced as they pass: a tail that may be the start of a
    token (``<PERS``) is held back until the next chunk of that choice, its finish, or the end."""
    held: dict[int, str] = {}
    last: dict[str, Any] | None = None
    async for chunk in chunks:
        if not tokens or not isinstance(chunk, dict):
            yield chunk
            continue
        last = chunk
        for choice in chunk.get("choices") or ():
            delta = _delta(choice) if isinstance(choice, dict) else None
            if delta is None:
                continue
            index = choice.get("index") or 0
            if isinstance(delta.get("content"), str):
                text = held.pop(index, "") + delta["content"]
                tail = _PARTIAL.search(text)
                if tail is not None and tail.start() > len(text) - 64:
                    held[index], text = text[tail.start():], text[:tail.start()]
                delta["content"] = unmask(text, tokens)
            if choice.get("finish_reason") is not None and index in held:
                delta["content"] = (delta.get("content") or "") + unmask(held.pop(index), tokens)
        yield chunk
    if held and last is not None:          # the stream ended inside a possible token, without a finish
        yield {key: last[key] for key in ("id", "object", "created", "model") if key in last} | {
            "choices": [{"index": i, "delta": {"content": unmask(rest, tokens)}, "finish_reason": None}
                        for i, rest in sorted(held.items())]}


def _joined(chunks: list[Any]) -> dict[int, str]:
    texts: dict[int, list[str]] = {}
    for chunk in chunks:
        for choice in (chunk.get("choices") or ()) if isinstance(chunk, dict) else ():
            delta = _delta(choice) if isinstance(choice, dict) else None
            if delta is not None and isinstance(delta.get("content"), str):
                texts.setdefault(choice.get("index") or 0, []).append(delta["content"])
    return {i: "".join(parts) for i, parts in texts.items()}


def _with_texts(chunks: list[Any], texts: dict[int, str]) -> list[Any]:
    """The chunks with each choice's text replaced: all of it in its first content delta."""
    placed: set[int] = set()
    for chunk in chunks:
        for choice in (chunk.get("choices") or ()) if isinstance(chunk, dict) else ():
            delta = _delta(choice) if isinstance(choice, dict) else None
            if delta is None or not isinstance(delta.get("content"), str):
                continue
            index = choice.get("index") or 0
            if index in texts and index not in placed:
                delta["content"] = texts[index]
                placed.add(index)
            elif index in texts:
                delta["content"] = ""
    return chunks
