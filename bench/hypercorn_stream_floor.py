"""The streaming floor: a trivial ASGI app under Hypercorn's trio worker that streams paced deltas.

``bench/streams.py --target floor`` runs the same streaming load against this app as against the
proxy. It produces the very events ``paced_upstream.py`` does (the first at once, then one every
``--interval`` seconds, ``[DONE]`` with the last) but has no upstream: each stream is one task that
sleeps between deltas and hands each event to Hypercorn as one ``http.response.body`` message.
That is the least any Hypercorn app relaying a paced stream can do per delta (one task wake-up and
one ASGI send through Hypercorn and h11), so the proxy's cost per delta minus this one is what the
proxy itself adds: reading the upstream, parsing, hooks, framing.

Settings are ``trioproxy run``'s (``hypercorn_floor.server_config``). Prints ``PORT <n>``.
"""

from __future__ import annotations

import argparse
from typing import Any

import trio
from hypercorn_floor import (
    BODY,
    HEADERS,
    lifespan,
    serve_and_announce,
    server_config,
    use_connection,
)
from paced_upstream import DONE_EVENT, USAGE_EVENT, delta_events

SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


def make_app(deltas: int, interval: float) -> Any:
    events = delta_events(deltas)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if b'"stream":true' not in body.replace(b" ", b""):
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
            await send({"type": "http.response.body", "body": BODY})
            return
        tail = (USAGE_EVENT if b'"include_usage":true' in body.replace(b" ", b"") else b"")
        tail += DONE_EVENT
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        due = trio.current_time()
        last = len(events) - 1
        for i, event in enumerate(events):
            if i:
                due += interval
                await trio.sleep_until(due)
            chunk = event + tail if i == last else event
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--deltas", type=int, default=64)
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--connection", choices=("hypercorn", "trioproxy"), default="hypercorn",
                        help="the per-connection class: Hypercorn's own, or trioproxy's subclass")
    args = parser.parse_args()
    use_connection(args.connection)
    app = make_app(args.deltas, args.interval)
    trio.run(serve_and_announce, app, server_config(args.host, args.port))


if __name__ == "__main__":
    main()
