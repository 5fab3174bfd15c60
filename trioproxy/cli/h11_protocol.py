"""Hypercorn's HTTP/1.1 protocol with less work per request, installed by ``server_connection.install``.

Hypercorn 0.18's ``H11Protocol`` is kept (h11 parses and frames everything; HTTP/2, h2c upgrades,
WebSockets and Hypercorn's limits are unchanged); two of its per-request costs are cut, each
measured with ``bench/cpu_per_request.py`` and py-spy (bench/README.md, "CPU per request"):

* a request's header fields are copied once from h11's item list, where Hypercorn walked h11's
  header sequence three times, decoding, stripping and lower-casing every name;
* the request's body messages are queued for the app without a scheduler round each.

A request that names ``upgrade``, the HTTP/2 preface, or ``h11_pass_raw_headers`` goes through
Hypercorn's own code.
"""

from __future__ import annotations

from typing import Any

import h11
import trio
from hypercorn.config import Config
from hypercorn.protocol.events import Request
from hypercorn.protocol.h11 import STREAM_ID, H11Protocol
from hypercorn.protocol.http_stream import HTTPStream

__all__ = ["ProxyH11Protocol"]


class ProxyH11Protocol(H11Protocol):
    """Hypercorn's HTTP/1.1 protocol, with a request's headers walked once rather than three times.

    For every request Hypercorn's ``_check_protocol`` and ``_create_stream`` each iterate h11's
    header sequence (its ``__iter__`` goes through ``__getitem__`` per field) decoding, stripping
    and lower-casing every name to find ``upgrade``/``connection``, and ``_create_stream`` iterates
    it a third time to copy it: ~3 % of the proxy's CPU per request (py-spy, bench/README.md "CPU
    per request"). h11 has already lower-cased and validated the names (no whitespace), so here the
    fields are copied once from h11's item list and compared as bytes. A request that names
    ``upgrade`` (h2c, WebSocket), the ``PRI`` preface, ``h11_pass_raw_headers`` or an h11 without
    that list take Hypercorn's own code, unchanged.
    """

    async def _check_protocol(self, event: h11.Request) -> None:
        fields = _plain_fields(event, self.config)
        if fields is None or event.method == b"PRI":
            await super()._check_protocol(event)
        # else: no upgrade and no HTTP/2 preface: Hypercorn's check would do nothing

    async def _create_stream(self, request: h11.Request) -> None:
        fields = _plain_fields(request, self.config)
        if fields is None:
            await super()._create_stream(request)
            return
        self.stream = HTTPStream(self.app, self.config, self.context, self.task_group, self.ssl, self.client,
                                 self.server, self.stream_send, STREAM_ID)
        await self.stream.handle(Request(stream_id=STREAM_ID, headers=fields,
                                         http_version=request.http_version.decode(),
                                         method=request.method.decode("ascii").upper(),
                                         raw_path=request.target, state=self.connection_state))
        put = getattr(self.stream, "app_put", None)
        channel = getattr(put, "__self__", None)
        if type(channel) is trio.MemorySendChannel and getattr(put, "__name__", "") == "send":
            self.stream.app_put = _QueuedPut(channel).put
        self.keep_alive_requests += 1
        await self.context.mark_request()


class _QueuedPut:
    """Hands a request's body messages to the app's queue without a scheduler round each.

    Hypercorn puts every body message (and the end of the body) with ``MemorySendChannel.send``,
    which yields to the scheduler after queueing even when there was room: two extra scheduler
    rounds per request for the connection's read task, which then only goes back to waiting for the
    socket. Here a message goes in with ``send_nowait`` when the queue has room (the same message,
    the same order; the app reads it as before), and ``send`` (waiting, as Hypercorn) only when the
    queue is full. The read task still checkpoints at its next wait for the socket."""

    __slots__ = ("_channel",)

    def __init__(self, channel: trio.MemorySendChannel[Any]) -> None:
        self._channel = channel

    async def put(self, message: Any) -> None:
        try:
            self._channel.send_nowait(message)
        except trio.WouldBlock:
            await self._channel.send(message)


def _plain_fields(request: h11.Request, config: Config) -> list[tuple[bytes, bytes]] | None:
    """The request's ``(name, value)`` fields as Hypercorn passes them, or None when Hypercorn's own
    code must look (an ``upgrade`` field, raw headers asked for, an h11 without ``_full_items``)."""
    full = getattr(request.headers, "_full_items", None)
    if type(full) is not list or config.h11_pass_raw_headers:
        return None
    fields = [(name, value) for _raw, name, value in full]
    for name, _value in fields:
        if name == b"upgrade":
            return None
    return fields
