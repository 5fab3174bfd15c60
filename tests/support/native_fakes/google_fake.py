"""Strict fakes of Google's Gemini API (AI Studio) and Vertex AI, with Vertex's OAuth token endpoint.

AI Studio: ``/v1beta/models/{model}:generateContent`` / ``:streamGenerateContent?alt=sse`` /
``:batchEmbedContents`` with the ``x-goog-api-key`` header. Vertex AI:
``/v1/projects/{p}/locations/{l}/publishers/google/models/{m}:{method}`` with a bearer token this
fake issued at ``POST /token`` — for a JWT assertion (RS256) whose signature, issuer, audience and
scope it verifies with the service account's public key, as Google's token endpoint does.

Requests are checked like the real API (unknown fields refused, roles ``user``/``model`` only, every
part exactly one of ``text``/``inlineData``/``fileData``/``functionCall``/``functionResponse``,
``functionResponse`` with a name and an object response); errors are ``{"error": {"code",
"message", "status", "details"}}``. Streams are SSE without an end marker; usage is cumulative.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .server import Exchange, NativeFake, Refuse, Reply

__all__ = ["GoogleFake", "make_service_account"]

_TOP_LEVEL = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings",
              "cachedContent", "labels"}
_GENERATION = {"temperature", "topP", "topK", "candidateCount", "maxOutputTokens", "stopSequences", "seed",
               "presencePenalty", "frequencyPenalty", "responseMimeType", "responseSchema", "responseJsonSchema",
               "thinkingConfig", "responseLogprobs", "logprobs"}
_PARTS = {"text", "inlineData", "fileData", "functionCall", "functionResponse"}
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


def _refuse(code: int, message: str, *, violation: bool = True, reason: str | None = None) -> Refuse:
    error: dict[str, Any] = {"code": code, "message": message, "status": _STATUS.get(code, "UNKNOWN")}
    if reason:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
                             "domain": "googleapis.com"}]
    return Refuse(code, {"error": error}, violation=message if violation else None)


def make_service_account(token_uri: str, project: str = "fake-project") -> tuple[dict[str, Any], Any]:
    """A service-account JSON (with a fresh RSA key) whose token_uri is the fake's; and the public key."""
    from cryptography.hazmat.primitives import serialization

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    info = {"type": "service_account", "project_id": project, "private_key_id": "fakekeyid1",
            "private_key": pem, "client_email": f"proxy@{project}.iam.gserviceaccount.com",
            "client_id": "1234567890", "token_uri": token_uri}
    return info, key.public_key()


def _b64url(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


@dataclass
class Script:
    text: str = "Hello from the fake Gemini."
    tool_call: dict[str, Any] | None = None
    fail: tuple[int, str] | None = None
    block_prompt: bool = False
    finish_reason: str = "STOP"
    truncate: bool = False
    hang: bool = False
    usage: dict[str, int] = field(default_factory=lambda: {"promptTokenCount": 12, "candidatesTokenCount": 6,
                                                           "thoughtsTokenCount": 20, "totalTokenCount": 38,
                                                           "cachedContentTokenCount": 3})


class GoogleFake(NativeFake):
    """``api_key`` for AI Studio; ``public_key`` (of a service account) for Vertex AI's tokens."""

    def __init__(self, api_key: str | None = None, public_key: Any = None, client_email: str | None = None,
                 project: str = "fake-project", location: str = "us-central1") -> None:
        super().__init__(self.handle)
        self.api_key = api_key
        self.public_key = public_key
        self.client_email = client_email
        self.project = project
        self.location = location
        self.tokens: dict[str, float] = {}
        self.token_requests = 0
        self.script = Script()

    # -- routing -------------------------------------------------------------------------------------

    def handle(self, ex: Exchange) -> Reply:
        if ex.path == "/token":
            return self._issue_token(ex)
        studio = re.fullmatch(r"/v1beta/models/([^/:]+):(\w+)", ex.path)
        vertex = re.fullmatch(rf"/v1/projects/{self.project}/locations/{self.location}/publishers/google/models/"
                              r"([^/:]+):(\w+)", ex.path)
        if ex.method != "POST" or not (studio or vertex):
            raise _refuse(404, f"Not found: {ex.method} {ex.path}")
        if studio:
            if "key" in ex.query:
                raise _refuse(400, "the key must not be in the URL (it ends up in logs)")
            if ex.headers.get("x-goog-api-key") != self.api_key:
                raise _refuse(400, "API key not valid. Please pass a valid API key.", violation=False,
                              reason="API_KEY_INVALID")
            model, method = studio.groups()
        else:
            assert vertex is not None
            token = ex.headers.get("authorization", "").removeprefix("Bearer ")
            if self.tokens.get(token, 0) < time.time():
                raise _refuse(401, "Request had invalid authentication credentials. Expected OAuth 2 access token.",
                              violation=False)
            model, method = vertex.groups()
        body = ex.json
        if not isinstance(body, dict):
            raise _refuse(400, "Invalid JSON payload received.")
        if self.script.fail is not None:
            code, message = self.script.fail
            raise _refuse(code, message, violation=False)
        if method == "batchEmbedContents" and studio:
            return self._batch_embed(model, body)
        if method == "predict" and vertex:
            return self._predict(body)
        if method == "streamGenerateContent":
            if ex.query.get("alt") != ["sse"]:
                raise _refuse(400, "the proxy must ask for alt=sse")
            self._check(body)
            return self._stream(model, body)
        if method == "generateContent":
            self._check(body)
            return self._answer(model, body)
        raise _refuse(404, f"method {method} not found")

    def _issue_token(self, ex: Exchange) -> Reply:
        form = parse_qs(ex.body.decode())
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"] or "assertion" not in form:
            raise Refuse(400, {"error": "invalid_grant", "error_description": "bad grant"}, violation="bad grant")
        header_b64, claims_b64, signature_b64 = form["assertion"][0].split(".")
        header = json.loads(_b64url(header_b64))
        claims = json.loads(_b64url(claims_b64))
        try:
            self.public_key.verify(_b64url(signature_b64), f"{header_b64}.{claims_b64}".encode(),
                                   padding.PKCS1v15(), hashes.SHA256())
        except Exception:
            raise Refuse(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
                         violation="bad JWT signature") from None
        expected_aud = "https://oauth2.googleapis.com/token"    # Google's audience for the JWT grant
        if header.get("alg") != "RS256" or claims.get("iss") != self.client_email or claims.get("aud") != expected_aud \
                or "https://www.googleapis.com/auth/cloud-platform" not in claims.get("scope", "").split() \
                or claims.get("exp", 0) < time.time():
            raise Refuse(400, {"error": "invalid_grant", "error_description": "bad claims"}, violation=str(claims))
        token = "ya29.fake-" + secrets.token_hex(8)
        self.tokens[token] = time.time() + 3600
        self.token_requests += 1
        return Reply(200, {"content-type": "application/json"},
                     json.dumps({"access_token": token, "expires_in": 3600, "token_type": "Bearer"}).encode())

    # -- validation ------------------------------------------------------------------------------------

    def _check(self, body: dict[str, Any]) -> None:
        unknown = set(body) - _TOP_LEVEL
        if unknown:
            raise _refuse(400, f'Invalid JSON payload received. Unknown name "{sorted(unknown)[0]}": Cannot find field.')
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            raise _refuse(400, "* GenerateContentRequest.contents: contents is not specified")
        for i, content in enumerate(contents):
            if content.get("role") not in ("user", "model"):
                raise _refuse(400, f"Please use a valid role: user, model. (contents[{i}])")
            if not content.get("parts"):
                raise _refuse(400, f"contents[{i}].parts must not be empty")
            for part in content["parts"]:
                keys = set(part) - {"thought", "thoughtSignature"}
                if len(keys) != 1 or not keys <= _PARTS:
                    raise _refuse(400, f"contents[{i}]: a part must be exactly one of {sorted(_PARTS)}")
                if "functionResponse" in part:
                    response = part["functionResponse"]
                    if not response.get("name") or not isinstance(response.get("response"), dict):
                        raise _refuse(400, "functionResponse needs a name and an object response")
                if "inlineData" in part and not {"mimeType", "data"} <= set(part["inlineData"]):
                    raise _refuse(400, "inlineData needs mimeType and data")
        system = body.get("systemInstruction")
        if system is not None and (not isinstance(system, dict) or not all("text" in p for p in system.get("parts", []))):
            raise _refuse(400, "systemInstruction must hold text parts")
        config = body.get("generationConfig") or {}
        if set(config) - _GENERATION:
            raise _refuse(400, f'Invalid JSON payload received. Unknown name "{sorted(set(config) - _GENERATION)[0]}" '
                          "at 'generation_config'")
        for tool in body.get("tools") or ():
            for declaration in tool.get("functionDeclarations") or ():
                if "additionalProperties" in json.dumps(declaration.get("parameters", {})):
                    raise _refuse(400, 'Invalid JSON payload received. Unknown name "additionalProperties"')

    # -- answers ---------------------------------------------------------------------------------------

    def _wants_tool(self, body: dict[str, Any]) -> bool:
        if not body.get("tools") or self.script.tool_call is None:
            return False
        return not any("functionResponse" in p for p in body["contents"][-1]["parts"])

    def _candidate_parts(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        if self._wants_tool(body):
            return [{"functionCall": dict(self.script.tool_call or {})}]
        return [{"text": "thinking...", "thought": True}, {"text": self.script.text}]

    def _answer(self, model: str, body: dict[str, Any]) -> Reply:
        if self.script.block_prompt:
            answer: dict[str, Any] = {"promptFeedback": {"blockReason": "SAFETY"},
                                      "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12}}
        else:
            answer = {"candidates": [{"content": {"role": "model", "parts": self._candidate_parts(body)},
                                      "finishReason": self.script.finish_reason, "index": 0}],
                      "usageMetadata": self.script.usage, "modelVersion": model, "responseId": "resp-fake-1"}
        return Reply(200, {"content-type": "application/json"}, json.dumps(answer).encode())

    def _stream(self, model: str, body: dict[str, Any]) -> Reply:
        def sse(data: dict[str, Any]) -> bytes:
            return b"data: " + json.dumps(data).encode() + b"\r\n\r\n"

        usage = self.script.usage
        words = self.script.text.split(" ")
        pieces = []
        for n, word in enumerate(words):
            partial = {"promptTokenCount": usage["promptTokenCount"], "candidatesTokenCount": n + 1,
                       "totalTokenCount": usage["promptTokenCount"] + n + 1}
            pieces.append(sse({"candidates": [{"content": {"role": "model", "parts": [
                {"text": word if n == 0 else " " + word}]}, "index": 0}], "usageMetadata": partial,
                "modelVersion": model, "responseId": "resp-fake-2"}))
            if self.script.hang:
                return Reply(200, {"content-type": "text/event-stream"}, pieces=pieces, hang=True)
        if self.script.truncate:
            return Reply(200, {"content-type": "text/event-stream"}, pieces=pieces)
        last_parts = [{"functionCall": self.script.tool_call}] if self._wants_tool(body) else [{"text": ""}]
        pieces.append(sse({"candidates": [{"content": {"role": "model", "parts": last_parts},
                                           "finishReason": self.script.finish_reason, "index": 0}],
                           "usageMetadata": usage, "modelVersion": model, "responseId": "resp-fake-2"}))
        return Reply(200, {"content-type": "text/event-stream"}, pieces=pieces)

    def _batch_embed(self, model: str, body: dict[str, Any]) -> Reply:
        requests = body.get("requests")
        if set(body) != {"requests"} or not isinstance(requests, list) or not requests:
            raise _refuse(400, "requests must be a non-empty list")
        vectors = []
        for request in requests:
            if request.get("model") != f"models/{model}":
                raise _refuse(400, f"requests[].model must be models/{model}")
            if set(request) - {"model", "content", "outputDimensionality", "taskType", "title"}:
                raise _refuse(400, "Unknown name in an embed request")
            text = request["content"]["parts"][0]["text"]
            vectors.append({"values": [0.25, float(len(text)), -1.0][:request.get("outputDimensionality", 3)]})
        return Reply(200, {"content-type": "application/json"}, json.dumps({"embeddings": vectors}).encode())

    def _predict(self, body: dict[str, Any]) -> Reply:
        instances = body.get("instances")
        if not isinstance(instances, list) or not all(isinstance(i.get("content"), str) for i in instances):
            raise _refuse(400, "instances[].content is required")
        predictions = [{"embeddings": {"values": [0.5, float(len(i["content"]))],
                                       "statistics": {"token_count": len(i["content"].split()), "truncated": False}}}
                       for i in instances]
        return Reply(200, {"content-type": "application/json"},
                     json.dumps({"predictions": predictions, "metadata": {"billableCharacterCount": 10}}).encode())
