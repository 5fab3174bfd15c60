"""Strict loopback fakes of the guardrail services LiteLLM's built-in guardrails call.

Each fake checks the request shape LiteLLM sends (method, path, headers, JSON keys and types) and
answers 400 with the problem when it is wrong, as a real service would refuse it; the tests assert
that no request was refused (``problems`` stays empty) on top of what the proxy did with the answer.
"""

from __future__ import annotations

import re
from typing import Any

from support.fake_services import FakeService, Reply, Seen

__all__ = ["FakePresidio"]


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
