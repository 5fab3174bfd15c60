"""Parsing an HTTP/1.1 response, with no I/O: bytes in, a head and body pieces out.

:class:`HeadParser` takes the bytes read after a request was sent until a complete response head
(status line, lower-cased headers, interim ``1xx`` answers skipped) and what follows it.
:class:`BodyParser` decodes the body (``Content-Length``, ``chunked`` with trailers, or
read-until-close) from the bytes fed to it, typically without copying a piece more than once. When
the body is complete it calls ``on_done(reusable)`` once: ``reusable`` says whether the connection
may carry another request (the server allows keep-alive and sent nothing past the body). What to do
with the connection is the caller's business (``pool.py``): this module never sees a socket.

A response that has both ``Transfer-Encoding`` and ``Content-Length``, or ``Transfer-Encoding`` in
HTTP/1.0, is decoded by ``Transfer-Encoding`` and is not reusable (RFC 9112 6.1, 6.3).
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import RemoteProtocolError

__all__ = ["MAX_HEAD_BYTES", "BodyParser", "HeadParser", "parse_head"]

#: the most a response head (status line, headers) may take; more is a protocol error
MAX_HEAD_BYTES = 64 * 1024
#: the most a chunk-size line may take
_MAX_CHUNK_LINE = 4096


def parse_head(head: bytes) -> tuple[int, dict[str, str], bool]:
    """Status, lower-cased headers (repeats joined with ", "), and whether keep-alive is allowed."""
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0]
    version, _, rest = status_line.partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit() or rest[3:4] not in ("", " "):
        raise RemoteProtocolError("the upstream's status line is not HTTP/1.x")
    if not code.isascii():          # str.isdigit() also accepts "²" and other non-ASCII digits
        raise RemoteProtocolError("the upstream's status line is not HTTP/1.x")
    status = int(code)
    headers: dict[str, str] = {}
    last = None
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if last is None:
                raise RemoteProtocolError("a header continuation line without a header")
            headers[last] = f"{headers[last]} {line.strip()}"
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise RemoteProtocolError("a malformed header line in the response")
        name = name.lower()
        value = value.strip()
        if name in headers:
            headers[name] = f"{headers[name]}, {value}"
        else:
            headers[name] = value
        last = name
    connection = headers.get("connection")
    if version == "HTTP/1.1":
        keep_alive = connection is None or "close" not in _tokens(connection)
    else:
        keep_alive = connection is not None and "keep-alive" in _tokens(connection)
    if "transfer-encoding" in headers and ("content-length" in headers or version != "HTTP/1.1"):
        keep_alive = False          # faulty framing (RFC 9112 6.1, 6.3): decode, then close
    return status, headers, keep_alive


def _tokens(value: str) -> list[str]:
    return [token.strip().lower() for token in value.split(",")]


class HeadParser:
    """Bytes after the request until a complete response head: :meth:`feed` returns it once complete."""

    __slots__ = ("_buf", "_scanned")

    def __init__(self) -> None:
        self._buf = b""
        self._scanned = 0

    def feed(self, data: bytes) -> tuple[int, dict[str, str], bool, bytes] | None:
        """Status, headers, keep-alive and the bytes after the head; None while the head is incomplete."""
        buf = self._buf + data if self._buf else data
        scanned = self._scanned
        while True:
            end = buf.find(b"\r\n\r\n", scanned)
            if end < 0:
                if len(buf) > MAX_HEAD_BYTES:
                    raise RemoteProtocolError(f"the response head exceeds {MAX_HEAD_BYTES} bytes")
                self._buf = buf
                self._scanned = max(0, len(buf) - 3)
                return None
            if end > MAX_HEAD_BYTES:
                raise RemoteProtocolError(f"the response head exceeds {MAX_HEAD_BYTES} bytes")
            status, headers, keep_alive = parse_head(buf[:end])
            buf = buf[end + 4:]
            if 100 <= status < 200 and status != 101:
                scanned = 0                 # an interim answer (100 Continue, 103 Early Hints): skip
                continue
            self._buf = b""
            return status, headers, keep_alive, buf


_NONE, _LENGTH, _CHUNKED, _CLOSE = range(4)
# chunked decoder states
_SIZE, _DATA, _DATA_END, _TRAILER = range(4)
_HEX_DIGITS = b"0123456789abcdefABCDEF"


class BodyParser:
    """A response body's framing: :meth:`feed` bytes, :meth:`decode` body pieces, ``on_done`` at its end.

    ``done`` is True once the body is complete (``on_done`` was called) or :meth:`abort` gave it up;
    ``aborted`` tells the two apart.
    """

    __slots__ = ("_buf", "_chunk_left", "_chunk_state", "_keep_alive", "_mode", "_on_done", "_remaining",
                 "aborted", "done")

    def __init__(self, method: str, status: int, headers: dict[str, str], keep_alive: bool, buf: bytes,
                 on_done: Callable[[bool], None]) -> None:
        self._on_done = on_done
        self._keep_alive = keep_alive
        self._buf = buf
        self.done = False
        self.aborted = False
        self._remaining = 0
        self._chunk_state = _SIZE
        self._chunk_left = 0
        transfer_encoding = headers.get("transfer-encoding")
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            self._mode = _NONE
        elif transfer_encoding is not None:
            if _tokens(transfer_encoding)[-1] == "chunked":
                self._mode = _CHUNKED
            else:
                self._mode = _CLOSE
        elif "content-length" in headers:
            self._mode = _LENGTH
            self._remaining = _content_length(headers["content-length"])
        else:
            self._mode = _CLOSE
        if self._mode == _CLOSE or status == 101:
            self._keep_alive = False
        if self._mode == _NONE or (self._mode == _LENGTH and self._remaining == 0):
            self._complete()

    def feed(self, data: bytes) -> None:
        """Bytes received on the connection (never empty)."""
        self._buf = self._buf + data if self._buf else data

    def end_of_input(self) -> bool:
        """The connection was closed by the server: True if that ends the body (read-until-close)."""
        if self._mode != _CLOSE:
            return False
        self._complete()
        return True

    def abort(self) -> None:
        """Give up on the rest of the body (``on_done`` is not called: the connection is not reusable)."""
        self.done = True
        self.aborted = True

    def _complete(self) -> None:
        self.done = True
        self._on_done(self._keep_alive and not self._buf)

    def decode(self) -> bytes:
        """Consume what the buffer holds; return the body bytes in it. Sets the end when seen."""
        mode = self._mode
        if mode == _LENGTH:
            buf = self._buf
            if not buf:
                return b""
            remaining = self._remaining
            if len(buf) <= remaining:
                self._buf = b""
                self._remaining = remaining - len(buf)
                piece = buf
            else:
                piece = buf[:remaining]
                self._buf = buf[remaining:]   # bytes past the body: the connection is not reused
                self._remaining = 0
            if self._remaining == 0:
                self._complete()
            return piece
        if mode == _CHUNKED:
            return self._decode_chunked()
        if mode == _CLOSE:
            piece, self._buf = self._buf, b""
            return piece
        return b""

    def _decode_chunked(self) -> bytes:
        buf = self._buf
        size = len(buf)
        pos = 0
        out: list[bytes] = []
        state = self._chunk_state
        left = self._chunk_left
        while pos < size:
            if state == _DATA:
                take = min(left, size - pos)
                out.append(buf[pos:pos + take] if (pos or take != size) else buf)
                pos += take
                left -= take
                if not left:
                    state = _DATA_END
            elif state == _DATA_END:
                if size - pos < 2:
                    break
                if buf[pos:pos + 2] != b"\r\n":
                    raise RemoteProtocolError("chunk data not followed by CRLF")
                pos += 2
                state = _SIZE
            elif state == _SIZE:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    if size - pos > _MAX_CHUNK_LINE:
                        raise RemoteProtocolError("a chunk-size line is too long")
                    break
                line = buf[pos:eol].split(b";", 1)[0].strip()
                pos = eol + 2
                if not line or line.strip(_HEX_DIGITS):
                    raise RemoteProtocolError("an invalid chunk size")
                left = int(line, 16)
                state = _DATA if left else _TRAILER
            else:  # _TRAILER: header lines until an empty one
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    if size - pos > MAX_HEAD_BYTES:
                        raise RemoteProtocolError(f"the chunked trailer exceeds {MAX_HEAD_BYTES} bytes")
                    break
                empty = eol == pos
                pos = eol + 2
                if empty:
                    self._buf = buf[pos:]
                    self._chunk_state = state
                    self._complete()
                    return b"".join(out)
        self._buf = buf[pos:] if pos < size else b""
        self._chunk_state = state
        self._chunk_left = left
        if len(out) == 1:
            return out[0]
        return b"".join(out)


def _content_length(value: str) -> int:
    values = {v.strip() for v in value.split(",")}
    if len(values) != 1:
        raise RemoteProtocolError("conflicting Content-Length headers")
    (only,) = values
    if not (only.isascii() and only.isdigit()):
        raise RemoteProtocolError("an invalid Content-Length")
    return int(only)
