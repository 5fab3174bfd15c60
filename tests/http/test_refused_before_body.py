"""Refused before the body, on every kind of route, and the connection still serves the next request.

The route decision runs before a body is read (issue #12): a caller without the right gets the
401/403, not a 400 about a body it may not send. Hypercorn cannot start the next request on a
keep-alive connection whose body the app left unread, so a small refused body is received and
dropped (never parsed); a large one is left unread and the answer closes the connection.
"""

from __future__ import annotations

import httpx

from conftest import MASTER_KEY

CONFIG = {"model_list": [{"model_name": "fake-chat", "litellm_params": {"model": "fake/demo"}}],
          "general_settings": {"master_key": MASTER_KEY}}
ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}
BAD = {"authorization": "Bearer sk-not-a-key"}


def test_refusals_keep_the_connection_usable(start_proxy) -> None:
    proxy = start_proxy(CONFIG)
    with httpx.Client(base_url=proxy.base_url, timeout=30) as client:
        for _ in range(20):
            # fast path: a body that would be a 400 is never looked at
            refused = client.post("/v1/chat/completions", content=b"{not json" + b"x" * 2000, headers=BAD)
            assert refused.status_code == 401 and "connection" not in refused.headers
            # a Quart route (the management API), invalid JSON: 401, not 400
            refused = client.post("/key/generate", content=b"{not json", headers=BAD)
            assert refused.status_code == 401 and "Invalid" in refused.json()["error"]["message"]
            # an admin route refused to a caller without a key
            assert client.post("/user/new", json={"user_id": "x" * 500}).status_code == 401
            # the same connection goes on
            assert client.get("/v1/models", headers=ADMIN).status_code == 200
            answer = client.post("/v1/chat/completions", headers=ADMIN,
                                 json={"model": "fake-chat", "messages": [{"role": "user", "content": "hi"}]})
            assert answer.status_code == 200


def test_a_large_refused_body_is_not_received(start_proxy) -> None:
    proxy = start_proxy(CONFIG)
    with httpx.Client(base_url=proxy.base_url, timeout=30) as client:
        refused = client.post("/v1/chat/completions", content=b"x" * (200 * 1024), headers=BAD)
        assert refused.status_code == 401 and refused.headers["connection"] == "close"
        refused = client.post("/key/generate", content=b"x" * (200 * 1024), headers=BAD)
        assert refused.status_code == 401 and refused.headers["connection"] == "close"
        assert client.get("/v1/models", headers=ADMIN).status_code == 200   # a new connection
