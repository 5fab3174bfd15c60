"""Strict loopback fakes of the guardrail services LiteLLM's built-in guardrails call.

Each fake checks the request shape LiteLLM sends (method, path, headers, JSON keys and types) and
answers 400 with the problem when it is wrong, as a real service would refuse it; the tests assert
that no request was refused (``problems`` stays empty) on top of what the proxy did with the answer.
"""

from __future__ import annotations

import re
from typing import Any

from support.fake_services import FakeService, Reply, Seen

__all__ = ["FakeAim", "FakeAporia", "FakeAzureContentSafety", "FakeBedrockGuardrail", "FakeGenericGuardrail", "FakeGuardrailsAI", "FakeLakera", "FakePresidio"]


class StrictService(FakeService):
    def __init__(self) -> None:
        super().__init__()
        #: every shape problem met (a test asserts it stays empty)
        self.problems: list[str] = []
        #: answer every request with this status (an outage)
        self.status: int | None = None

    def refuse(self, problem: str) -> Reply:
        self.problems.append(problem)
        return Reply(400, {"error": problem})

    def json_body(self, seen: Seen, required: dict[str, type | tuple[type, ...]],
                  optional: dict[str, type | tuple[type, ...]]) -> tuple[dict[str, Any] | None, str | None]:
        if seen.method != "POST":
            return None, f"method {seen.method}"
        if "application/json" not in seen.headers.get("content-type", ""):
            return None, f"content-type {seen.headers.get('content-type')!r}"
        try:
            body = seen.json()
        except ValueError:
            return None, "body is not JSON"
        if not isinstance(body, dict):
            return None, "body is not an object"
        for key, kind in required.items():
            if not isinstance(body.get(key), kind):
                return None, f"{key} missing or of the wrong type"
        for key, value in body.items():
            if key not in required and (key not in optional or not isinstance(value, optional[key])):
                return None, f"unexpected key {key!r}"
        return body, None


# -- Presidio --------------------------------------------------------------------------------------
_PATTERNS = {
    "EMAIL_ADDRESS": re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+"),
    "CREDIT_CARD": re.compile(r"\b(?:\d{4}[ -]?){3}\d{4}\b"),
    "PHONE_NUMBER": re.compile(r"\b\d{3}-\d{3}-\d{4}\b"),
}
_PEOPLE = ("Jane Doe", "John Smith", "Erika Mustermann")


class FakePresidio(StrictService):
    """Presidio's analyzer (``POST /analyze``) and anonymizer (``POST /anonymize``) on one port.

    Recognises e-mail addresses, credit card numbers, US phone numbers and a few names (PERSON, with
    score 0.6); the anonymizer's default operator replaces each entity by ``<ENTITY_TYPE>``.
    """

    ANALYZE_OPTIONAL = {"entities": list, "ad_hoc_recognizers": list, "correlation_id": str,
                        "score_threshold": (int, float), "return_decision_process": bool, "context": list,
                        "allow_list": list}

    def handle(self, seen: Seen) -> Reply:
        if self.status is not None:
            return Reply(self.status, {"error": "unavailable"})
        if seen.path == "/analyze":
            return self._analyze(seen)
        if seen.path == "/anonymize":
            return self._anonymize(seen)
        return self.refuse(f"unknown path {seen.path}")

    def _analyze(self, seen: Seen) -> Reply:
        body, problem = self.json_body(seen, {"text": str, "language": str}, self.ANALYZE_OPTIONAL)
        if body is None:
            return self.refuse(f"/analyze: {problem}")
        text, wanted = body["text"], body.get("entities")
        results = []
        for entity, pattern in _PATTERNS.items():
            results += [{"entity_type": entity, "start": m.start(), "end": m.end(), "score": 1.0}
                        for m in pattern.finditer(text)]
        for person in _PEOPLE:
            results += [{"entity_type": "PERSON", "start": m.start(), "end": m.end(), "score": 0.6}
                        for m in re.finditer(re.escape(person), text)]
        for recognizer in body.get("ad_hoc_recognizers") or ():
            for deny in recognizer.get("deny_list") or ():
                results += [{"entity_type": recognizer["supported_entity"], "start": m.start(), "end": m.end(),
                             "score": 1.0} for m in re.finditer(re.escape(deny), text)]
        if wanted is not None:
            results = [r for r in results if r["entity_type"] in wanted]
        return Reply(200, sorted(results, key=lambda r: r["start"]))

    def _anonymize(self, seen: Seen) -> Reply:
        body, problem = self.json_body(seen, {"text": str, "analyzer_results": list}, {})
        if body is None:
            return self.refuse(f"/anonymize: {problem}")
        text = body["text"]
        results = sorted(body["analyzer_results"], key=lambda r: r["start"], reverse=True)
        items = []
        for r in results:
            if not all(k in r for k in ("entity_type", "start", "end")):
                return self.refuse("/anonymize: an analyzer result lacks entity_type/start/end")
            token = f"<{r['entity_type']}>"
            text = text[:r["start"]] + token + text[r["end"]:]
            items.append({"start": r["start"], "end": r["start"] + len(token), "entity_type": r["entity_type"],
                          "text": token, "operator": "replace"})
        return Reply(200, {"text": text, "items": items})


# -- Bedrock ApplyGuardrail ------------------------------------------------------------------------
_SIGV4 = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/bedrock/aws4_request, "
                    r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


class FakeBedrockGuardrail(StrictService):
    """``POST /guardrail/{id}/version/{version}/apply`` with SigV4 checked.

    Requests signed with a key in ``credentials`` have their signature recomputed (botocore's
    canonical request) and must match; keys from STS (``ASIA…``, ``allow_session_keys``) must carry
    ``x-amz-security-token``. A text containing "coffee" is blocked (topic policy), e-mail addresses
    are anonymized to ``{EMAIL}``; anything else passes (``action: NONE``).
    """

    def __init__(self, credentials: dict[str, str], region: str = "us-east-1") -> None:
        super().__init__()
        self.credentials = credentials
        self.region = region
        self.allow_session_keys = False
        #: guardrail ids this fake knows → version
        self.guardrails: dict[str, str] = {}

    def _check_signature(self, seen: Seen) -> str | None:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        found = _SIGV4.match(seen.headers.get("authorization", ""))
        if found is None:
            return "no SigV4 authorization header for the service bedrock"
        key, _, region, signed, signature = found.groups()
        if region != self.region:
            return f"signed for region {region}"
        if "x-amz-date" not in signed.split(";") or "host" not in signed.split(";"):
            return "x-amz-date and host must be signed"
        if key.startswith("ASIA") and self.allow_session_keys:
            return None if "x-amz-security-token" in seen.headers else "a session key without its token"
        if key not in self.credentials:
            return f"unknown access key {key}"
        headers = {h: seen.headers[h] for h in signed.split(";") if h != "host"}
        request = AWSRequest(method=seen.method, url=f"{self.url}{seen.path}", data=seen.body, headers=headers)
        request.context["timestamp"] = seen.headers["x-amz-date"]
        auth = SigV4Auth(Credentials(key, self.credentials[key]), "bedrock", region)
        expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
        return None if expected == signature else "signature mismatch"

    def handle(self, seen: Seen) -> Reply:
        if self.status is not None:
            return Reply(self.status, {"message": "unavailable"})
        found = re.fullmatch(r"/guardrail/([^/]+)/version/([^/]+)/apply", seen.path)
        if found is None or self.guardrails.get(found.group(1)) != found.group(2):
            return self.refuse(f"unknown guardrail path {seen.path}")
        problem = self._check_signature(seen)
        if problem is not None:
            self.problems.append(problem)
            return Reply(403, {"message": problem})
        body, problem = self.json_body(seen, {"source": str, "content": list}, {})
        if body is None or body["source"] not in ("INPUT", "OUTPUT"):
            return self.refuse(f"apply: {problem or 'source'}")
        texts = []
        for item in body["content"]:
            if not isinstance(item, dict) or not isinstance(item.get("text"), dict) or \
                    not isinstance(item["text"].get("text"), str) or set(item) != {"text"}:
                return self.refuse("apply: content items are {'text': {'text': str}}")
            texts.append(item["text"]["text"])
        usage = {"topicPolicyUnits": 1, "contentPolicyUnits": 0, "wordPolicyUnits": 0,
                 "sensitiveInformationPolicyUnits": 1, "sensitiveInformationPolicyFreeUnits": 0,
                 "contextualGroundingPolicyUnits": 0}
        if any("coffee" in t.lower() for t in texts):
            blocked = "Sorry, the model cannot answer this question. coffee guardrail applied"
            return Reply(200, {"action": "GUARDRAIL_INTERVENED", "blockedResponse": blocked,
                               "outputs": [{"text": blocked}], "usage": usage,
                               "assessments": [{"topicPolicy": {"topics": [
                                   {"name": "Coffee", "type": "DENY", "action": "BLOCKED"}]}}]})
        if any(_EMAIL.search(t) for t in texts):
            return Reply(200, {"action": "GUARDRAIL_INTERVENED", "usage": usage,
                               "outputs": [{"text": _EMAIL.sub("{EMAIL}", t)} for t in texts],
                               "assessments": [{"sensitiveInformationPolicy": {"piiEntities": [
                                   {"type": "EMAIL", "action": "ANONYMIZED", "match": "x"}]}}]})
        return Reply(200, {"action": "NONE", "outputs": [], "assessments": [], "usage": usage})


# -- Aporia ----------------------------------------------------------------------------------------
class FakeAporia(StrictService):
    """``POST /validate`` with ``X-APORIA-API-KEY``; "forbidden" anywhere → ``action: block``."""

    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key

    def handle(self, seen: Seen) -> Reply:
        if self.status is not None:
            return Reply(self.status, {"detail": "unavailable"})
        if seen.path != "/validate":
            return self.refuse(f"unknown path {seen.path}")
        if seen.headers.get("x-aporia-api-key") != self.api_key:
            self.problems.append("wrong X-APORIA-API-KEY")
            return Reply(401, {"detail": "unauthorized"})
        body, problem = self.json_body(seen, {"messages": list, "validation_target": str}, {"response": str})
        if body is None:
            return self.refuse(f"/validate: {problem}")
        target = body["validation_target"]
        if target not in ("prompt", "response", "both") or (target == "both") != ("response" in body):
            return self.refuse(f"/validate: validation_target {target!r} with response={'response' in body}")
        for m in body["messages"]:
            if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant", "other"):
                return self.refuse(f"/validate: message role {m.get('role') if isinstance(m, dict) else m!r}")
        texts = [str(m.get("content")) for m in body["messages"]] + [body.get("response", "")]
        if any("forbidden" in t for t in texts):
            return Reply(200, {"action": "block", "revised_response": "Aporia says no.",
                               "explain_log": [], "policy_execution_result": {}})
        return Reply(200, {"action": "passthrough", "revised_response": None})


# -- Lakera Guard v2 -------------------------------------------------------------------------------
class FakeLakera(StrictService):
    """``POST /v2/guard`` with a bearer key. "ignore previous instructions" → prompt attack;
    e-mail addresses → ``pii/email`` detections (with ``payload`` offsets per message)."""

    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key

    def handle(self, seen: Seen) -> Reply:
        if self.status is not None:
            return Reply(self.status, {"error": "unavailable"})
        if seen.path != "/v2/guard":
            return self.refuse(f"unknown path {seen.path}")
        if seen.headers.get("authorization") != f"Bearer {self.api_key}":
            self.problems.append("wrong bearer key")
            return Reply(401, {"error": "unauthorized"})
        body, problem = self.json_body(seen, {"messages": list},
                                       {"payload": bool, "breakdown": bool, "dev_info": bool, "project_id": str,
                                        "metadata": dict})
        if body is None:
            return self.refuse(f"/v2/guard: {problem}")
        attack, payload = False, []
        for index, m in enumerate(body["messages"]):
            if not isinstance(m, dict) or not isinstance(m.get("content"), str) or not isinstance(m.get("role"), str):
                return self.refuse("/v2/guard: messages are {role, content: str}")
            attack = attack or "ignore previous instructions" in m["content"].lower()
            payload += [{"start": e.start(), "end": e.end(), "text": e.group(), "detector_type": "pii/email",
                         "labels": [], "message_id": index} for e in _EMAIL.finditer(m["content"])]
        breakdown = [{"project_id": "p", "policy_id": "x", "detector_id": "d1", "detector_type": "prompt_attack",
                      "detected": attack},
                     {"project_id": "p", "policy_id": "x", "detector_id": "d2", "detector_type": "pii/email",
                      "detected": bool(payload)}]
        return Reply(200, {"flagged": attack or bool(payload), "payload": payload, "breakdown": breakdown})


# -- Azure AI Content Safety -----------------------------------------------------------------------
class FakeAzureContentSafety(StrictService):
    """``POST /contentsafety/text:analyze`` and ``text:shieldPrompt`` with ``Ocp-Apim-Subscription-Key``
    and ``api-version``. Severity 4 for Violence when "attack" appears, 6 for Hate on "hate"; a prompt
    containing "ignore all rules" is a detected attack."""

    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key

    def handle(self, seen: Seen) -> Reply:
        if self.status is not None:
            return Reply(self.status, {"error": {"code": "InternalError", "message": "unavailable"}})
        if seen.headers.get("ocp-apim-subscription-key") != self.api_key:
            self.problems.append("wrong Ocp-Apim-Subscription-Key")
            return Reply(401, {"error": {"code": "401", "message": "Access denied"}})
        version = (seen.query.get("api-version") or [""])[0]
        if version not in ("2023-10-01", "2024-09-01"):
            return self.refuse(f"api-version {version!r}")
        if seen.path == "/contentsafety/text:analyze":
            body, problem = self.json_body(seen, {"text": str}, {"categories": list, "blocklistNames": list,
                                                                 "haltOnBlocklistHit": bool, "outputType": str})
            if body is None or len(body["text"]) > 10_000:
                return self.refuse(f"text:analyze: {problem or 'text over 10,000 characters'}")
            text = body["text"].lower()
            severity = {"Hate": 6 if "hate" in text else 0, "SelfHarm": 0, "Sexual": 0,
                        "Violence": 4 if "attack" in text else 0}
            wanted = body.get("categories") or list(severity)
            return Reply(200, {"blocklistsMatch": [], "categoriesAnalysis": [
                {"category": c, "severity": severity[c]} for c in wanted]})
        if seen.path == "/contentsafety/text:shieldPrompt":
            body, problem = self.json_body(seen, {"userPrompt": str, "documents": list}, {})
            if body is None:
                return self.refuse(f"text:shieldPrompt: {problem}")
            return Reply(200, {"userPromptAnalysis": {"attackDetected": "ignore all rules" in body["userPrompt"]},
                               "documentsAnalysis": []})
        return self.refuse(f"unknown path {seen.path}")


# -- Guardrails AI server --------------------------------------------------------------------------
class FakeGuardrailsAI(StrictService):
    """``POST /guards/{guard}/validate`` with ``{"llmOutput": str}``: "toxic" fails validation; the
    guard ``detect-pii`` returns the text with e-mail addresses replaced by ``<EMAIL_ADDRESS>``."""

    def __init__(self, guards: tuple[str, ...] = ("detect-pii",)) -> None:
        super().__init__()
        self.guards = guards

    def handle(self, seen: Seen) -> Reply:
        if self.status is not None:
            return Reply(self.status, {"message": "unavailable"})
        found = re.fullmatch(r"/guards/([^/]+)/validate", seen.path)
        if found is None or found.group(1) not in self.guards:
            return self.refuse(f"unknown guard path {seen.path}")
        body, problem = self.json_body(seen, {"llmOutput": str}, {"numReasks": int, "promptParams": dict})
        if body is None:
            return self.refuse(f"validate: {problem}")
        text = body["llmOutput"]
        passed = "toxic" not in text.lower()
        return Reply(200, {"callId": "c1", "rawLlmOutput": text, "validationPassed": passed,
                           "validatedOutput": _EMAIL.sub("<EMAIL_ADDRESS>", text) if passed else None})


# -- LiteLLM's Generic Guardrail API ---------------------------------------------------------------
class FakeGenericGuardrail(StrictService):
    """``POST /beta/litellm_basic_guardrail_api``: "blockme" → BLOCKED; e-mail addresses → the texts
    with ``[EMAIL]`` (GUARDRAIL_INTERVENED); else NONE. Checks ``x-api-key`` and the payload's keys."""

    NONE_OR = type(None)

    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key

    def handle(self, seen: Seen) -> Reply:
        if self.status is not None:
            return Reply(self.status, {"detail": "unavailable"})
        if seen.path != "/beta/litellm_basic_guardrail_api":
            return self.refuse(f"unknown path {seen.path}")
        if seen.headers.get("x-api-key") != self.api_key:
            self.problems.append("wrong x-api-key")
            return Reply(401, {"detail": "unauthorized"})
        none = self.NONE_OR
        body, problem = self.json_body(
            seen, {"texts": list, "input_type": str, "additional_provider_specific_params": dict},
            {"litellm_call_id": (str, none), "litellm_trace_id": (str, none), "request_data": (dict, none),
             "images": (list, none), "tools": (list, none), "tool_calls": (list, none),
             "structured_messages": (list, none), "request_headers": (dict, none), "litellm_version": (str, none)})
        if body is None or body["input_type"] not in ("request", "response") or \
                not all(isinstance(t, str) for t in body["texts"]):
            return self.refuse(f"guardrail api: {problem or 'input_type / texts'}")
        texts = body["texts"]
        if any("blockme" in t for t in texts):
            return Reply(200, {"action": "BLOCKED", "blocked_reason": "policy 7"})
        if any(_EMAIL.search(t) for t in texts):
            return Reply(200, {"action": "GUARDRAIL_INTERVENED", "texts": [_EMAIL.sub("[EMAIL]", t) for t in texts]})
        return Reply(200, {"action": "NONE"})


# -- Aim Security ----------------------------------------------------------------------------------
class FakeAim(StrictService):
    """``POST /fw/v1/analyze`` with a bearer key and ``x-aim-litellm-hook``. "jailbreak" → block;
    "Alice" in the last message (pre_call) → anonymized to ``[NAME_1]`` (a session entity)."""

    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key

    def handle(self, seen: Seen) -> Reply:
        if self.status is not None:
            return Reply(self.status, {"detail": "unavailable"})
        if seen.path != "/fw/v1/analyze":
            return self.refuse(f"unknown path {seen.path}")
        if seen.headers.get("authorization") != f"Bearer {self.api_key}":
            self.problems.append("wrong bearer key")
            return Reply(401, {"detail": "unauthorized"})
        hook = seen.headers.get("x-aim-litellm-hook")
        if hook not in ("pre_call", "moderation", "output") or not seen.headers.get("x-aim-litellm-version"):
            return self.refuse(f"x-aim-litellm-hook {hook!r} / version header")
        body, problem = self.json_body(seen, {"messages": list}, {})
        if body is None:
            return self.refuse(f"analyze: {problem}")
        texts = [str(m.get("content")) for m in body["messages"] if isinstance(m, dict)]
        analysis = {"policy_drill_down": {"jailbreak": {}}, "session_entities": []}
        if any("jailbreak" in t for t in texts):
            return Reply(200, {"analysis_result": analysis, "required_action": {
                "action_type": "block_action", "detection_message": "Jailbreak attempt detected"}})
        last = body["messages"][-1] if body["messages"] else {}
        if hook == "pre_call" and "Alice" in str(last.get("content")):
            analysis["session_entities"] = [{"name": "NAME_1", "content": "Alice"}]
            redacted = {"role": last.get("role"), "content": str(last.get("content")).replace("Alice", "[NAME_1]")}
            return Reply(200, {"analysis_result": analysis, "required_action": {
                "action_type": "anonymize_action",
                "chat_redaction_result": {"redacted_new_message": redacted, "all_redacted_messages": []}}})
        return Reply(200, {"analysis_result": analysis, "required_action": None})
