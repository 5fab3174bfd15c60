"""A strict fake of Bedrock Runtime: Converse, ConverseStream and InvokeModel (Titan/Cohere embeddings).

Every request's SigV4 signature is verified with botocore against the fake's known credentials
(the signature the real service computes the same way): an unknown access key is a 403
``UnrecognizedClientException``, a wrong signature a 403 ``InvalidSignatureException``. Converse
bodies are checked like the service does (``ValidationException`` for unknown fields, roles that do
not alternate, blocks that are not exactly one of ``text``/``image``/``toolUse``/``toolResult``…,
a ``toolResult`` answering no ``toolUse``). ConverseStream answers in AWS event-stream framing
(prelude, headers, payload, CRCs), encoded here by hand so botocore's decoder in the proxy is
checked against an independent encoder.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .server import Exchange, NativeFake, Refuse, Reply

__all__ = ["BedrockFake", "event_frame"]

_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                   r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})")
_TOP_LEVEL = {"messages", "system", "inferenceConfig", "toolConfig", "additionalModelRequestFields", "guardrailConfig",
              "performanceConfig", "requestMetadata", "promptVariables", "additionalModelResponseFieldPaths"}
_BLOCKS = {"text", "image", "toolUse", "toolResult", "document", "cachePoint", "reasoningContent", "video"}


def _refuse(status: int, kind: str, message: str, violation: bool = True) -> Refuse:
    return Refuse(status, {"message": message},
                  headers={"content-type": "application/json",
                           "x-amzn-errortype": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"},
                  violation=f"{kind}: {message}" if violation else None)


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack("!B", len(raw_name)) + raw_name + b"\x07" + struct.pack("!H", len(raw_value)) + raw_value


def event_frame(headers: dict[str, str], payload: dict[str, Any]) -> bytes:
    """One AWS event-stream message: prelude (lengths + CRC), headers, payload, message CRC."""
    head = b"".join(_header(k, v) for k, v in headers.items())
    body = json.dumps(payload).encode()
    total = 12 + len(head) + len(body) + 4
    prelude = struct.pack("!II", total, len(head))
    prelude += struct.pack("!I", zlib.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + head + body
    return message + struct.pack("!I", zlib.crc32(message) & 0xFFFFFFFF)


def _event(kind: str, payload: dict[str, Any]) -> bytes:
    return event_frame({":event-type": kind, ":content-type": "application/json", ":message-type": "event"}, payload)


@dataclass
class Script:
    text: str = "Hello from the fake Bedrock."
    tool_call: dict[str, Any] | None = None
    fail: tuple[int, str, str] | None = None        # (status, exception type, message)
    stream_exception: tuple[str, str] | None = None  # ("throttlingException", message) mid-stream
    truncate: bool = False
    hang: bool = False
    usage: dict[str, int] = field(default_factory=lambda: {"inputTokens": 30, "outputTokens": 9, "totalTokens": 39,
                                                           "cacheReadInputTokens": 4, "cacheWriteInputTokens": 0})


class BedrockFake(NativeFake):
    def __init__(self, access_key: str, secret_key: str, region: str = "us-east-1",
                 session_token: str | None = None) -> None:
        super().__init__(self.handle)
        self.credentials = Credentials(access_key, secret_key, session_token)
        self.region = region
        self.script = Script()

    # -- SigV4 ---------------------------------------------------------------------------------------

    def _verify(self, ex: Exchange) -> None:
        match = _AUTH.fullmatch(ex.headers.get("authorization", ""))
        if match is None:
            raise _refuse(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        access_key, date, region, service, signed, signature = match.groups()
        if access_key != self.credentials.access_key:
            raise _refuse(403, "UnrecognizedClientException", "The security token included in the request is invalid.",
                          violation=False)
        if region != self.region or service != "bedrock":
            raise _refuse(403, "InvalidSignatureException", f"Credential should be scoped to a valid region "
                          f"({region}/{service})")
        names = signed.split(";")
        if "host" not in names or "x-amz-date" not in names:
            raise _refuse(403, "InvalidSignatureException", "host and x-amz-date must be signed")
        if self.credentials.token and ex.headers.get("x-amz-security-token") != self.credentials.token:
            raise _refuse(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
        request = AWSRequest(method=ex.method, url=f"http://{ex.host}{ex.target}", data=ex.body,
                             headers={name: ex.headers.get(name, "") for name in names})
        request.context["timestamp"] = ex.headers["x-amz-date"]
        auth = SigV4Auth(self.credentials, "bedrock", self.region)
        expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
        if expected != signature or not ex.headers["x-amz-date"].startswith(date):
            raise _refuse(403, "InvalidSignatureException", "The request signature we calculated does not match the "
                          "signature you provided. Check your AWS Secret Access Key and signing method.")

    # -- routing ---------------------------------------------------------------------------------------

    def handle(self, ex: Exchange) -> Reply:
        match = re.fullmatch(r"/model/([^/]+)/(converse|converse-stream|invoke)", ex.path)
        if ex.method != "POST" or match is None:
            raise _refuse(404, "UnknownOperationException", f"no operation at {ex.method} {ex.path}")
        self._verify(ex)
        model_id, action = unquote(match.group(1)), match.group(2)
        if not isinstance(ex.json, dict):
            raise _refuse(400, "ValidationException", "Malformed input request")
        if self.script.fail is not None:
            status, kind, message = self.script.fail
            raise _refuse(status, kind, message, violation=False)
        if action == "invoke":
            return self._embed(model_id, ex.json)
        self._check_converse(ex.json)
        return self._stream(model_id, ex.json) if action == "converse-stream" else self._answer(model_id, ex.json)

    def _check_converse(self, body: dict[str, Any]) -> None:
        extra = set(body) - _TOP_LEVEL
        if extra:
            raise _refuse(400, "ValidationException", f"Malformed input request: extraneous key [{sorted(extra)[0]}] "
                          "is not permitted")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _refuse(400, "ValidationException", "messages must not be empty")
        previous, previous_ids = None, set()
        for i, message in enumerate(messages):
            role = message.get("role")
            if role not in ("user", "assistant") or role == previous:
                raise _refuse(400, "ValidationException", f"messages.{i}: roles must alternate between user and "
                              "assistant")
            ids = set()
            if not message.get("content"):
                raise _refuse(400, "ValidationException", f"messages.{i}.content must not be empty")
            for block in message["content"]:
                keys = set(block)
                if len(keys) != 1 or not keys <= _BLOCKS:
                    raise _refuse(400, "ValidationException", f"messages.{i}: a content block must be exactly one of "
                                  f"{sorted(_BLOCKS)}, got {sorted(keys)}")
                if "image" in block:
                    image = block["image"]
                    if image.get("format") not in ("png", "jpeg", "gif", "webp") or "bytes" not in image.get("source", {}):
                        raise _refuse(400, "ValidationException", "image needs a format and source.bytes")
                if "toolUse" in block:
                    use = block["toolUse"]
                    if role != "assistant" or not use.get("toolUseId") or not isinstance(use.get("input"), dict):
                        raise _refuse(400, "ValidationException", "malformed toolUse")
                    ids.add(use["toolUseId"])
                if "toolResult" in block and block["toolResult"].get("toolUseId") not in previous_ids:
                    raise _refuse(400, "ValidationException", "The toolResult blocks at messages.{i} must answer a "
                                  "toolUse of the previous turn")
            previous, previous_ids = role, ids
        for block in body.get("system") or ():
            if set(block) - {"text", "cachePoint", "guardContent"}:
                raise _refuse(400, "ValidationException", "system blocks are text")
        config = body.get("inferenceConfig") or {}
        if set(config) - {"maxTokens", "temperature", "topP", "stopSequences"}:
            raise _refuse(400, "ValidationException", "inferenceConfig: unknown field")
        tools = body.get("toolConfig")
        if tools is not None:
            for tool in tools.get("tools") or ():
                spec = tool.get("toolSpec") or {}
                if not spec.get("name") or "json" not in (spec.get("inputSchema") or {}):
                    raise _refuse(400, "ValidationException", "toolSpec needs name and inputSchema.json")

    # -- answers ---------------------------------------------------------------------------------------

    def _wants_tool(self, body: dict[str, Any]) -> bool:
        if body.get("toolConfig") is None or self.script.tool_call is None:
            return False
        return not any("toolResult" in b for b in body["messages"][-1]["content"])

    def _answer(self, model_id: str, body: dict[str, Any]) -> Reply:
        if self._wants_tool(body):
            content = [{"toolUse": {"toolUseId": "tooluse_fake1", **self.script.tool_call}}]
            stop = "tool_use"
        else:
            content, stop = [{"text": self.script.text}], "end_turn"
        answer = {"output": {"message": {"role": "assistant", "content": content}}, "stopReason": stop,
                  "usage": self.script.usage, "metrics": {"latencyMs": 12}}
        return Reply(200, {"content-type": "application/json", "x-amzn-requestid": "fake-req"},
                     json.dumps(answer).encode())

    def _stream(self, model_id: str, body: dict[str, Any]) -> Reply:
        pieces = [_event("messageStart", {"role": "assistant"})]
        headers = {"content-type": "application/vnd.amazon.eventstream"}
        words = self.script.text.split(" ")
        pieces.append(_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": words[0]}}))
        if self.script.hang:
            return Reply(200, headers, pieces=pieces, hang=True)
        for word in words[1:]:
            pieces.append(_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": " " + word}}))
        pieces.append(_event("contentBlockStop", {"contentBlockIndex": 0}))
        stop = "end_turn"
        if self._wants_tool(body):
            call = self.script.tool_call or {}
            pieces.append(_event("contentBlockStart", {"contentBlockIndex": 1, "start": {"toolUse": {
                "toolUseId": "tooluse_fake2", "name": call["name"]}}}))
            arguments = json.dumps(call["input"])
            for part in (arguments[:5], arguments[5:]):
                pieces.append(_event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": part}}}))
            pieces.append(_event("contentBlockStop", {"contentBlockIndex": 1}))
            stop = "tool_use"
        if self.script.stream_exception is not None:
            kind, message = self.script.stream_exception
            pieces.append(event_frame({":exception-type": kind, ":content-type": "application/json",
                                       ":message-type": "exception"}, {"message": message}))
            return Reply(200, headers, pieces=pieces)
        if not self.script.truncate:
            pieces.append(_event("messageStop", {"stopReason": stop}))
            pieces.append(_event("metadata", {"usage": self.script.usage, "metrics": {"latencyMs": 20}}))
        # one frame split across two writes: the decoder must reassemble it
        joined = b"".join(pieces)
        return Reply(200, headers, pieces=[joined[:37], joined[37:]])

    def _embed(self, model_id: str, body: dict[str, Any]) -> Reply:
        base = model_id.split(".", 1)[1] if model_id.startswith(("us.", "eu.")) else model_id
        if base.startswith("amazon.titan-embed"):
            if set(body) - {"inputText", "dimensions", "normalize", "embeddingTypes"} or not isinstance(
                    body.get("inputText"), str):
                raise _refuse(400, "ValidationException", "Malformed input request: #: required key [inputText] not "
                              "found or extraneous key")
            vector = [round(0.001 * (len(body["inputText"]) + i), 6) for i in range(body.get("dimensions", 4))]
            answer = {"embedding": vector, "inputTextTokenCount": len(body["inputText"].split())}
            return Reply(200, {"content-type": "application/json"}, json.dumps(answer).encode())
        if base.startswith("cohere.embed"):
            texts = body.get("texts")
            if not isinstance(texts, list) or "input_type" not in body:
                raise _refuse(400, "ValidationException", "texts and input_type are required")
            answer = {"id": "emb-1", "response_type": "embeddings_floats", "texts": texts,
                      "embeddings": [[0.5, -0.25, float(len(t))] for t in texts]}
            tokens = sum(len(t.split()) for t in texts)
            return Reply(200, {"content-type": "application/json", "x-amzn-bedrock-input-token-count": str(tokens)},
                         json.dumps(answer).encode())
        raise _refuse(400, "ValidationException", f"The provided model identifier is invalid: {model_id}")
