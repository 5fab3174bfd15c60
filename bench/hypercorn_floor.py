"""The floor: Hypercorn's trio worker serving a trivial ASGI app (a fixed JSON body).

Measures what the HTTP server alone costs on this machine, with the same settings as
``trioproxy run`` (backlog 2048, keep-alive 75 s, ``h11_max_incomplete_size`` 64 KiB, no access
log), so the proxy's figures can be read against it::

    python bench/hypercorn_floor.py --port 4070 &
    python bench/loadgen.py --url http://127.0.0.1:4070/v1/chat/completions -c 16 --duration 5

``bench/floor_compare.py`` runs it in the same run as the proxy and prints the ratios of issue #14.
With ``--port 0`` it picks a free port; either way it prints ``PORT <n>`` once it is listening.

No proxy can be faster than this floor while it is served by Hypercorn.

``--connection trioproxy`` serves it with trioproxy's own per-connection class instead of
Hypercorn's (``trioproxy/cli/server_connection.py``: writes without a lock and a shielded scope
when no write is under way, one idle timer per connection): the floor of the server the proxy
actually runs on, beside Hypercorn's own.
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
        await lifespan(receive, send)
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


async def lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        await send({"type": message["type"] + ".complete"})
        if message["type"] == "lifespan.shutdown":
            return


def server_config(host: str, port: int) -> Config:
    """Hypercorn's settings as ``trioproxy run`` sets them (trioproxy/cli/run.py), one worker."""
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.backlog = 2048
    config.keep_alive_timeout = 75.0
    config.h11_max_incomplete_size = 64 * 1024
    return config


def use_connection(kind: str) -> None:
    """``hypercorn`` (Hypercorn's ``TCPServer``, the default) or ``trioproxy`` (the proxy's subclass)."""
    if kind == "trioproxy":
        from trioproxy.cli.server_connection import install

        install()


async def serve_and_announce(asgi_app: Any, config: Config) -> None:
    """Serve ``asgi_app`` and print ``PORT <n>`` once bound (so ``--port 0`` can be used)."""
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            lambda task_status: serve(asgi_app, config, task_status=task_status)
        )
        print(f"PORT {binds[0].rsplit(':', 1)[1]}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4070, help="0 picks a free port")
    parser.add_argument("--connection", choices=("hypercorn", "trioproxy"), default="hypercorn",
                        help="the per-connection class: Hypercorn's own, or trioproxy's subclass")
    args = parser.parse_args()
    use_connection(args.connection)
    trio.run(serve_and_announce, app, server_config(args.host, args.port))


if __name__ == "__main__":
    main()
