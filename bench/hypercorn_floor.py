"""The floor: Hypercorn's trio worker serving a trivial ASGI app (a fixed JSON body).

Measures what the HTTP server alone costs on this machine, with the same settings as
``trioproxy run`` (backlog 2048, keep-alive 75 s, no access log), so the proxy's figures can be
read against it::

    python bench/hypercorn_floor.py --port 4070 &
    python bench/loadgen.py --url http://127.0.0.1:4070/v1/chat/completions -c 16 --duration 5

No proxy can be faster than this floor while it is served by Hypercorn.
"""

from __future__ import annotations

import argparse
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

BODY = (b'{"id":"chatcmpl-floor","object":"chat.completion","created":1,"model":"floor","choices":'
        b'[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}')
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4070)
    args = parser.parse_args()
    config = Config()
    config.bind = [f"127.0.0.1:{args.port}"]
    config.accesslog = None
    config.backlog = 2048
    config.keep_alive_timeout = 75.0
    trio.run(serve, app, config)


if __name__ == "__main__":
    main()
