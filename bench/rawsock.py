"""Non-blocking stdlib sockets driven by Trio's lowest level, for the streams benchmark.

Why not ``trio.socket``: every ``await sock.recv()`` there is a cancellation checkpoint, a wait for
readability and a cancel-shielded checkpoint, so each received delta costs two trips through
Trio's scheduler. At 1024 streams x 50 deltas/s the harness must handle ~51 000 deltas a second on
one core, and only the proxy is allowed to be the bottleneck. Here a read is one
``wait_readable`` (a single task wake-up) followed by plain ``recv`` calls until the kernel says
``EAGAIN``, and a write is a plain ``send`` that only waits when the kernel buffer is full. That
makes the harness's cost per delta a few microseconds of syscalls, and it lets the paced upstream
write a due delta to a socket from its pacing loop without waking the stream's own task at all.

Cancellation still works: ``wait_readable``/``wait_writable`` are checkpoints, and :func:`close`
tells Trio the socket is going away before closing it.
"""

from __future__ import annotations

import errno
import socket

import trio

RECV_BYTES = 65536


class PeerClosed(Exception):
    """The peer closed the connection (EOF, reset or broken pipe)."""


def listen(host: str, port: int, backlog: int = 4096) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


async def accept(listener: socket.socket) -> socket.socket:
    while True:
        try:
            conn, _addr = listener.accept()
        except BlockingIOError:
            await trio.lowlevel.wait_readable(listener)
            continue
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn


async def connect(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        code = sock.connect_ex((host, port))
        if code not in (0, errno.EINPROGRESS):
            raise OSError(code, f"connect to {host}:{port}: {errno.errorcode.get(code, code)}")
        if code:
            await trio.lowlevel.wait_writable(sock)
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise OSError(code, f"connect to {host}:{port}: {errno.errorcode.get(code, code)}")
    except BaseException:
        sock.close()
        raise
    return sock


async def recv(sock: socket.socket) -> bytes:
    """Everything the kernel has for ``sock`` now (waiting once if nothing), never b''."""
    while True:
        try:
            data = sock.recv(RECV_BYTES)
        except BlockingIOError:
            await trio.lowlevel.wait_readable(sock)
            continue
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise PeerClosed(repr(exc)) from None
        if not data:
            raise PeerClosed("EOF")
        return data


def try_send(sock: socket.socket, data: bytes | memoryview) -> int:
    """Send what fits without waiting; the number of bytes the kernel took (maybe 0)."""
    try:
        return sock.send(data)
    except BlockingIOError:
        return 0
    except (ConnectionResetError, BrokenPipeError) as exc:
        raise PeerClosed(repr(exc)) from None


async def send_all(sock: socket.socket, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        sent = try_send(sock, view)
        view = view[sent:]
        if view:
            await trio.lowlevel.wait_writable(sock)


def close(sock: socket.socket) -> None:
    if sock.fileno() >= 0:
        trio.lowlevel.notify_closing(sock)
        sock.close()
