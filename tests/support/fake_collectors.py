"""A strict local receiver for the built-in logging integrations (tests/observability/integrations).

One threaded HTTP server on 127.0.0.1 playing every service at once, each on its own path:
Langfuse's ``/api/public/ingestion``, Datadog's ``/api/v2/logs``, GCS uploads
``/upload/storage/v1/b/<bucket>/o`` (tokens of :class:`~support.fake_google.FakeGoogle`), an S3 bucket ``/<bucket>/<key>``
(path style), a generic API endpoint ``/generic``, OpenMeter's ``/api/v1/events``, Athina's
``/api/v1/log/inference``, an SQS queue ``/123456789012/log-queue``, LangSmith's ``/runs/batch``, OTLP/HTTP
collectors (``/v1/traces``, a self-hosted Phoenix's ``/phoenix/v1/traces``, Langtrace's ``/api/trace``),
Lunary's ``/v1/runs/ingest`` and a Slack webhook ``/slack``. It records every request and checks what
the real service would check — the auth header (Basic, ``DD-API-KEY``, SigV4 recomputed with
botocore from the known secret, ``x-api-key``), the encoding (gzip, protobuf, JSON) — and answers
401/403/400 when a check fails, like the service would; ``problems`` lists every failed check.
``fail_paths`` makes a path answer 500 (an endpoint that is down).
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    #: the decoded payload (JSON, gunzipped JSON, or the OTLP protobuf message)
    payload: Any = None


@dataclass
class Credentials:
    langfuse_public: str = "pk-lf-test-0123456789"
    langfuse_secret: str = "sk-lf-SECRET-0123456789"
    dd_api_key: str = "dd-SECRET-api-key-0123456789"
    langsmith_key: str = "ls-SECRET-api-key-0123456789"
    generic_token: str = "generic-SECRET-token-0123456789"
    openmeter_key: str = "om-SECRET-api-key-0123456789"
    athina_key: str = "athina-SECRET-api-key-0123456789"
    otel_token: str = "otel-SECRET-token-0123456789"
    aws_key_id: str = "AKIATESTKEY0123456789"
    aws_secret: str = "aws-SECRET-access-key-0123456789"
    phoenix_key: str = "phoenix-SECRET-api-key-0123456789"
    langtrace_key: str = "langtrace-SECRET-api-key-0123456789"
    lunary_key: str = "lunary-SECRET-private-key-0123456789"
    confident_key: str = "confident-SECRET-api-key-0123456789"
    galileo_password: str = "galileo-SECRET-password-0123456789"
    region: str = "us-west-2"
    bucket: str = "logs-bucket"

    def all_secrets(self) -> list[str]:
        return [self.langfuse_secret, self.dd_api_key, self.langsmith_key, self.generic_token, self.otel_token,
                self.aws_secret, self.openmeter_key, self.athina_key, self.phoenix_key, self.langtrace_key,
                self.lunary_key, self.confident_key, self.galileo_password]


@dataclass
class FakeCollectors:
    creds: Credentials = field(default_factory=Credentials)
    received: list[Received] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    fail_paths: set[str] = field(default_factory=set)
    #: requests to these paths are recorded, then held until ``release`` is set (a hanging endpoint)
    hold_paths: set[str] = field(default_factory=set)
    release: threading.Event = field(default_factory=threading.Event)
    #: the OAuth tokens a Google token endpoint issued (``FakeGoogle.tokens``): GCS uploads need one
    gcs_tokens: set[str] = field(default_factory=set)
    #: more Langfuse projects (public key -> secret key) the ingestion endpoint accepts (per-team logging)
    langfuse_projects: dict[str, str] = field(default_factory=dict)
    #: logins Galileo's fake issued (each makes the tokens before it stale)
    galileo_logins: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        collectors = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                status, answer = collectors.check(self.command, self.path, dict(self.headers.items()), body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeCollectors:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def on(self, path_prefix: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path.startswith(path_prefix)]

    def wait_for(self, path_prefix: str, count: int, timeout: float = 30.0) -> list[Received]:
        """Blocks until ``count`` requests reached ``path_prefix`` (a deadline, not a timing assertion)."""
        with self._changed:
            self._changed.wait_for(lambda: len([r for r in self.received if r.path.startswith(path_prefix)]) >= count,
                                   timeout)
        return self.on(path_prefix)

    # -- the checks --------------------------------------------------------------------------------
    def _problem(self, text: str) -> None:
        self.problems.append(text)

    def check(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        lower = {k.lower(): v for k, v in headers.items()}
        record = Received(method, path, lower, body)
        status, answer = 200, {}
        try:
            status, answer = self._check(record)
        except Exception as exc:   # a malformed payload: what the service would refuse
            self._problem(f"{path}: {type(exc).__name__}: {exc}")
            status, answer = 400, {"error": str(exc)}
        if any(path.startswith(p) for p in self.fail_paths):
            status, answer = 500, {"error": "down"}
        with self._changed:
            self.received.append(record)
            self._changed.notify_all()
        if any(path.startswith(p) for p in self.hold_paths):
            self.release.wait(60)
        return status, answer

    def _check(self, r: Received) -> tuple[int, Any]:
        c, h = self.creds, r.headers
        if r.path == "/api/public/ingestion":
            projects = {c.langfuse_public: c.langfuse_secret, **self.langfuse_projects}
            accepted = {"Basic " + base64.b64encode(f"{public}:{secret}".encode()).decode()
                        for public, secret in projects.items()}
            if r.method != "POST" or h.get("authorization") not in accepted:
                self._problem("langfuse: wrong method or Basic auth")
                return 401, {"message": "Invalid credentials"}
            r.payload = json.loads(r.body)
            events = r.payload["batch"]
            for event in events:
                assert event["type"] in ("trace-create", "generation-create"), event["type"]
                assert event["id"] and event["timestamp"] and isinstance(event["body"], dict)
            return 207, {"successes": [{"id": e["id"], "status": 201} for e in events], "errors": []}
        if r.path == "/api/v2/logs":
            if h.get("dd-api-key") != c.dd_api_key or h.get("content-encoding") != "gzip":
                self._problem("datadog: missing DD-API-KEY or gzip")
                return 403, {"errors": ["Forbidden"]}
            r.payload = json.loads(gzip.decompress(r.body))
            for log in r.payload:
                assert set(log) >= {"ddsource", "ddtags", "hostname", "message", "service", "status"}, log
                json.loads(log["message"])
            return 202, {}
        if r.path.startswith(f"/{c.bucket}/"):
            if r.method != "PUT" or not self._sigv4_ok(r):
                self._problem("s3: wrong method or SigV4 signature")
                return 403, {"Code": "SignatureDoesNotMatch"}
            r.payload = json.loads(r.body)
            return 200, {}
        if r.path == "/generic":
            if h.get("authorization") != f"Bearer {c.generic_token}":
                self._problem("generic_api: GENERIC_LOGGER_HEADERS not sent")
                return 401, {}
            r.payload = json.loads(r.body)
            return 200, {}
        if r.path == "/runs/batch":
            if h.get("x-api-key") != c.langsmith_key:
                self._problem("langsmith: wrong x-api-key")
                return 401, {}
            r.payload = json.loads(r.body)
            return 202, {}
        # OTLP/HTTP: the otel collector, a self-hosted Phoenix, Langtrace's endpoint (its own auth each)
        otlp_auth = {"/v1/traces": ("authorization", f"Bearer {c.otel_token}"),
                     "/phoenix/v1/traces": ("authorization", f"Bearer {c.phoenix_key}"),
                     "/api/trace": ("api_key", c.langtrace_key)}
        if r.path in otlp_auth:
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
                ExportTraceServiceRequest,
            )

            header, expected = otlp_auth[r.path]
            if h.get(header) != expected or h.get("content-type") != "application/x-protobuf":
                self._problem(f"otlp {r.path}: {header} not sent, or not protobuf")
                return 401, {}
            message = ExportTraceServiceRequest()
            message.ParseFromString(r.body)
            r.payload = message
            return 200, {}
        if r.path.startswith("/v1/projects/") and r.path.endswith(":publish"):   # Pub/Sub's REST publish
            bearer = h.get("authorization", "").removeprefix("Bearer ")
            if r.method != "POST" or bearer not in self.gcs_tokens:
                self._problem("pubsub: wrong method or token")
                return 401, {"error": {"code": 401}}
            body = json.loads(r.body)
            r.payload = [json.loads(base64.b64decode(m["data"])) for m in body["messages"]]
            return 200, {"messageIds": [str(i) for i in range(len(r.payload))]}
        if r.path.startswith("/upload/storage/v1/b/"):
            from urllib.parse import parse_qs, urlsplit

            bearer = h.get("authorization", "").removeprefix("Bearer ")
            query = parse_qs(urlsplit(r.path).query)
            if r.method != "POST" or bearer not in self.gcs_tokens or query.get("uploadType") != ["media"]:
                self._problem("gcs: wrong method, token or uploadType")
                return 401, {"error": {"code": 401}}
            assert query.get("name"), "an upload names its object"
            r.payload = json.loads(r.body)
            return 200, {"name": query["name"][0]}
        if r.path == "/123456789012/log-queue":   # an SQS queue URL
            from urllib.parse import parse_qs

            form = parse_qs(r.body.decode())
            if r.method != "POST" or not self._sigv4_ok(r, "sqs") or form.get("Action") != ["SendMessage"] \
                    or h.get("content-type") != "application/x-www-form-urlencoded":
                self._problem("sqs: wrong method, form or SigV4 signature")
                return 403, {"Error": "SignatureDoesNotMatch"}
            assert form["Version"] == ["2012-11-05"]
            r.payload = json.loads(form["MessageBody"][0])
            return 200, {}
        if r.path == "/api/v1/events":   # OpenMeter: one CloudEvent
            if h.get("authorization") != f"Bearer {c.openmeter_key}" or \
                    h.get("content-type") != "application/cloudevents+json":
                self._problem("openmeter: wrong Bearer key or content type")
                return 401, {}
            r.payload = json.loads(r.body)
            assert r.payload["specversion"] == "1.0" and r.payload["subject"] and r.payload["id"]
            return 204, {}
        if r.path == "/api/v1/log/inference":   # Athina
            if h.get("athina-api-key") != c.athina_key:
                self._problem("athina: wrong athina-api-key")
                return 401, {}
            r.payload = json.loads(r.body)
            assert r.payload["language_model_id"]
            return 200, {}
        if r.path == "/v1/runs/ingest":   # Lunary: {"events": [...]} under its Bearer key
            if r.method != "POST" or h.get("authorization") != f"Bearer {c.lunary_key}" or \
                    h.get("content-type") != "application/json":
                self._problem("lunary: wrong method, Bearer key or content type")
                return 401, {"error": "Unauthorized"}
            r.payload = json.loads(r.body)
            for event in r.payload["events"]:
                assert event["event"] in ("start", "end", "error") and event["type"] in ("llm", "embed"), event
                assert event["runId"] and event["timestamp"], event
            return 200, {}
        if r.path == "/v1/tracing":   # Confident AI (deepeval): one trace with its llm span
            if r.method != "POST" or h.get("confident_api_key") != c.confident_key:
                self._problem("deepeval: wrong method or CONFIDENT_API_KEY header")
                return 401, {"error": "Unauthorized"}
            r.payload = json.loads(r.body)
            assert set(r.payload) == {"uuid", "baseSpans", "agentSpans", "llmSpans", "retrieverSpans", "toolSpans",
                                      "startTime", "endTime", "environment"}, r.payload
            (span,) = r.payload["llmSpans"]
            assert span["type"] == "llm" and span["status"] in ("SUCCESS", "ERRORED") and span["traceUuid"]
            assert span["startTime"].endswith("Z") and None not in span.values()
            return 200, {"success": True}
        if r.path == "/galileo/login":   # Galileo: a form login issues a bearer token
            from urllib.parse import parse_qs

            form = parse_qs(r.body.decode())
            if r.method != "POST" or h.get("content-type") != "application/x-www-form-urlencoded" or \
                    form.get("username") != ["proxy-user"] or form.get("password") != [c.galileo_password]:
                self._problem("galileo: wrong login form")
                return 401, {"detail": "Incorrect username or password"}
            self.galileo_logins += 1
            return 200, {"access_token": f"galileo-token-{self.galileo_logins}", "token_type": "bearer"}
        if r.path.startswith("/galileo/projects/") and r.path.endswith("/observe/ingest"):
            if h.get("authorization") != f"Bearer galileo-token-{self.galileo_logins}":
                return 401, {"detail": "token expired"}        # a stale token: the client logs in again
            r.payload = json.loads(r.body)
            for record in r.payload["records"]:
                assert set(record) == {"latency_ms", "status_code", "input_text", "output_text", "node_type", "model",
                                       "num_input_tokens", "num_output_tokens", "output_logprobs", "created_at",
                                       "tags", "user_metadata"}, record
            return 200, {"num_records": len(r.payload["records"])}
        if r.path == "/slack":
            r.payload = json.loads(r.body)
            assert isinstance(r.payload.get("text"), str)
            return 200, {}
        self._problem(f"unexpected request {r.method} {r.path}")
        return 404, {}

    def _sigv4_ok(self, r: Received, service: str = "s3") -> bool:
        """Recompute the SigV4 signature from the received request with botocore and the known secret."""
        import hashlib

        from botocore.auth import S3SigV4Auth, SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials as BotoCredentials

        if service == "s3" and r.headers.get("x-amz-content-sha256") != hashlib.sha256(r.body).hexdigest():
            return False
        auth_header = r.headers.get("authorization", "")
        if not auth_header.startswith("AWS4-HMAC-SHA256 ") or f"Credential={self.creds.aws_key_id}/" not in auth_header:
            return False
        signed = auth_header.split("SignedHeaders=")[1].split(",")[0].split(";")
        request = AWSRequest(method=r.method, url=f"http://{r.headers['host']}{r.path}", data=r.body,
                             headers={k: v for k, v in r.headers.items() if k in signed})
        request.context["timestamp"] = r.headers["x-amz-date"]
        signer_class = S3SigV4Auth if service == "s3" else SigV4Auth
        signer = signer_class(BotoCredentials(self.creds.aws_key_id, self.creds.aws_secret), service, self.creds.region)
        canonical = signer.canonical_request(request)
        signature = signer.signature(signer.string_to_sign(request, canonical), request)
        return auth_header.endswith(f"Signature={signature}")
