"""A strict local OTLP/gRPC trace collector (Arize's ``otlp.arize.com`` plays one).

A real ``grpc`` server on 127.0.0.1 (plaintext) implementing OpenTelemetry's ``TraceService.Export``
from ``opentelemetry-proto``'s generated stubs. Each call's metadata must carry ``required``
(lower-case keys, as gRPC sends them) or the call is refused with ``UNAUTHENTICATED``, as Arize
refuses spans without ``space_id`` / ``api_key``; ``problems`` lists every refusal.
"""

from __future__ import annotations

import threading
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FakeGrpcCollector:
    required: dict[str, str]
    received: list[Any] = field(default_factory=list)
    metadata: list[dict[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        import grpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

        collector = self
        self._changed = threading.Condition()

        class Service(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                metadata = {k: v for k, v in context.invocation_metadata()}
                wrong = [k for k, v in collector.required.items() if metadata.get(k) != v]
                with collector._changed:
                    if wrong:
                        collector.problems.append(f"missing or wrong metadata: {', '.join(wrong)}")
                    else:
                        collector.received.append(request)
                        collector.metadata.append(metadata)
                    collector._changed.notify_all()
                if wrong:
                    context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid space_id or api_key")
                return trace_service_pb2.ExportTraceServiceResponse()

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeGrpcCollector:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(grace=None)

    def spans(self) -> list[Any]:
        with self._changed:
            requests = list(self.received)
        return [span for request in requests for resource in request.resource_spans
                for scope in resource.scope_spans for span in scope.spans]

    def resources(self) -> list[dict[str, str]]:
        with self._changed:
            requests = list(self.received)
        return [{a.key: a.value.string_value for a in resource.resource.attributes}
                for request in requests for resource in request.resource_spans]
