"""Which response heads the connection class holds for the body's first write (``_body_must_follow``).

Held only when h11 cannot end the response without body bytes: a final status with a non-empty
``Content-Length``. A stream's chunked head, an empty body's head and a ``1xx`` go out at once (a
stream's first event may take long; nothing else would flush them). The bytes on the wire are the
same either way: ``test_client_leaves_connection_end.py`` checks whole answers, ``HEAD`` included.
"""

from __future__ import annotations

import pytest

from trioproxy.cli.server_connection import _body_must_follow


@pytest.mark.parametrize("head, held", [
    (b"HTTP/1.1 200 \r\ncontent-type: application/json\r\ncontent-length: 324\r\n\r\n", True),
    (b"HTTP/1.1 400 \r\nContent-Length: 12\r\nconnection: close\r\n\r\n", True),
    (b"HTTP/1.1 200 \r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n", False),
    (b"HTTP/1.1 200 \r\ncontent-length: 0\r\n\r\n", False),
    (b"HTTP/1.1 100 \r\n\r\n", False),
    (b"HTTP/1.1 200 \r\ncontent-length: 5\r\n\r\nhello", False),   # not a head alone: a body is in it
    (b"5\r\nhello\r\n", False),                                     # a chunk, not a head
    (b"HTTP/1.1 200 \r\ncontent-length: abc\r\n\r\n", False),
])
def test_only_a_final_head_with_a_non_empty_content_length_is_held(head: bytes, held: bool) -> None:
    assert _body_must_follow(head) is held
