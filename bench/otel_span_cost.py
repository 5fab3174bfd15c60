"""CPU per request of the ``otel`` integration: the OpenTelemetry SDK (chosen) vs OTLP/HTTP JSON by hand.

    .venv/bin/python bench/otel_span_cost.py [--spans 2000] [--rounds 3]

Both variants send the same span for the same StandardLoggingPayload to a local collector
(``tests/support/fake_collectors.py`` accepts protobuf; here a plain sink answering 200):

* ``sdk``: ``OpenTelemetryLogger.send`` — create and end a span on the calling (Trio) thread; the
  SDK's BatchSpanProcessor thread batches (512), encodes protobuf and POSTs.
* ``json``: what writing it ourselves would cost per event: build the OTLP/JSON document with orjson
  and POST it with httpx from the Trio thread, one request per span (batching would need our own
  timer, buffer and shutdown flush — what the SDK already has).

Reported per span: ``caller_us`` (time on the calling thread: what the logging worker spends) and
``process_cpu_us`` (all threads, export included, after a flush). Interleaved rounds, medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import orjson
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class _Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()


def _payload(i: int) -> dict:
    from trioproxy.observability.integrations.standard_payload import standard_logging_payload
    now = time.time()
    record = {"id": f"req-{i}", "call_type": "completion", "status": "success", "model": "gpt-test",
              "upstream_model": "gpt-4o-mini", "provider": "openai", "prompt_tokens": 12, "completion_tokens": 30,
              "total_tokens": 42, "response_cost": 0.0001, "start_time": now - 0.5, "end_time": now,
              "timings": {"time_to_first_token": 0.1}, "key_hash": "ab" * 32, "key_alias": "sk-...abcd",
              "tags": ["a"], "metadata": {"tags": ["a"]}}
    kwargs = {"standard_logging_object": record, "messages": [{"role": "user", "content": "hello " * 20}],
              "optional_params": {"temperature": 0.2, "max_tokens": 100}}
    response = {"id": f"chatcmpl-{i}", "model": "gpt-4o-mini",
                "choices": [{"message": {"role": "assistant", "content": "world " * 30}}]}
    return standard_logging_payload(kwargs, response)


def _json_document(p: dict) -> bytes:
    attrs = [{"key": k, "value": {"stringValue": str(v)}} for k, v in (
        ("gen_ai.request.model", p["model"]), ("gen_ai.system", p["custom_llm_provider"]),
        ("gen_ai.usage.input_tokens", p["prompt_tokens"]), ("gen_ai.usage.output_tokens", p["completion_tokens"]),
        ("gen_ai.input.messages", orjson.dumps(p["messages"]).decode()),
        ("gen_ai.output.messages", orjson.dumps(p["response"]).decode()))]
    span = {"traceId": os.urandom(16).hex(), "spanId": os.urandom(8).hex(), "name": "litellm_request", "kind": 1,
            "startTimeUnixNano": str(int(p["startTime"] * 1e9)), "endTimeUnixNano": str(int(p["endTime"] * 1e9)),
            "attributes": attrs, "status": {"code": 1}}
    return orjson.dumps({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "litellm"}}]}, "scopeSpans": [{"spans": [span]}]}]})


async def _round_sdk(url: str, payloads: list[dict]) -> tuple[float, float]:
    from trioproxy.observability.integrations.base import IntegrationSettings
    from trioproxy.observability.integrations.otel import OpenTelemetryLogger
    os.environ.update({"OTEL_EXPORTER": "otlp_http", "OTEL_ENDPOINT": url})
    logger = OpenTelemetryLogger(IntegrationSettings(None))
    cpu0, t0 = time.process_time(), time.perf_counter()
    for p in payloads:
        await logger.send(p, {}, None)
    caller = time.perf_counter() - t0
    await trio.to_thread.run_sync(logger.provider.force_flush)   # made by the first send
    cpu = time.process_time() - cpu0
    logger.provider.shutdown()
    return caller, cpu


async def _round_json(url: str, payloads: list[dict]) -> tuple[float, float]:
    async with httpx.AsyncClient() as client:
        cpu0, t0 = time.process_time(), time.perf_counter()
        for p in payloads:
            await client.post(f"{url}/v1/traces", content=_json_document(p),
                              headers={"content-type": "application/json"})
        return time.perf_counter() - t0, time.process_time() - cpu0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    payloads = [_payload(i) for i in range(args.spans)]
    results: dict[str, list[tuple[float, float]]] = {"sdk": [], "json": []}
    for _ in range(args.rounds):
        results["sdk"].append(trio.run(_round_sdk, url, payloads))
        results["json"].append(trio.run(_round_json, url, payloads))
    for name, rounds in results.items():
        caller = statistics.median(r[0] for r in rounds) / args.spans * 1e6
        cpu = statistics.median(r[1] for r in rounds) / args.spans * 1e6
        print(f"{name:5s} caller_us={caller:8.1f}  process_cpu_us={cpu:8.1f}  (median of {args.rounds}, "
              f"{args.spans} spans; the sink server's CPU is in the same process)")
    server.shutdown()


if __name__ == "__main__":
    main()
