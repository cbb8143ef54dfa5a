"""An OTLP/HTTP trace receiver that keeps nothing: it decodes each export and counts spans.

For bench/tracing_overhead.py: the server then pays the whole cost of OTLP export
(protobuf encoding, an HTTP POST per batch) without a collector installed.

    .venv/bin/python -m bench.otlp_sink --port 4318   # prints the span count on SIGTERM
"""

from __future__ import annotations

import argparse
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


class Sink(ThreadingHTTPServer):
    spans = 0


class Receiver(BaseHTTPRequestHandler):
    server: Sink

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        request = ExportTraceServiceRequest.FromString(body)
        self.server.spans += sum(
            len(scope.spans) for rs in request.resource_spans for scope in rs.scope_spans
        )
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:  # quiet: no line per export
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4318)
    args = parser.parse_args()
    sink = Sink(("127.0.0.1", args.port), Receiver)

    def stop(_signal: int, _frame: FrameType | None) -> None:
        print(f"spans received: {sink.spans}", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    sink.serve_forever()


if __name__ == "__main__":
    main()
