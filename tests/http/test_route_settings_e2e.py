"""The route settings on every route, through a real ``trioproxy run`` (issue #12): before this,
``public_routes`` / ``admin_only_routes`` / ``allowed_routes`` reached only the docs, the hub and
the pass-through endpoints; now the fast path and the management API obey them too, as do a
virtual key's own ``allowed_routes``.
"""

from __future__ import annotations

import httpx

from conftest import MASTER_KEY

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}
CHAT = {"model": "fake-chat", "messages": [{"role": "user", "content": "hi"}]}


def test_route_settings_apply_to_every_route(start_proxy, tmp_path) -> None:
    proxy = start_proxy({
        "model_list": [{"model_name": "fake-chat", "litellm_params": {"model": "fake/demo"}}],
        "general_settings": {
            "master_key": MASTER_KEY, "database_url": f"sqlite:///{tmp_path / 'p.db'}",
            "public_routes": ["LiteLLMRoutes.public_routes", "/v1/models"],
            "admin_only_routes": ["/v1/chat/completions"],
            "allowed_routes": ["LiteLLMRoutes.public_routes", "/v1/models", "/v1/chat/completions", "/key/*",
                               "/user/*"],
        }})
    with httpx.Client(base_url=proxy.base_url, timeout=30) as client:
        # allowed_routes: everything else is gone, for the master key too, before the body is read
        refused = client.post("/v1/embeddings", headers=ADMIN, content=b"{not json")
        assert refused.status_code == 403
        assert refused.json()["error"]["message"] == "Access forbidden: Route /v1/embeddings not allowed"
        assert client.post("/team/new", headers=ADMIN, json={}).status_code == 403
        # public_routes: no key needed (and a bad key is ignored)
        assert client.get("/v1/models").status_code == 200
        assert client.get("/v1/models", headers={"authorization": "Bearer sk-stale"}).status_code == 200
        # admin_only_routes: a virtual key may not chat, the master key may
        key = client.post("/key/generate", headers=ADMIN, json={}).json()["key"]
        refused = client.post("/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, json=CHAT)
        assert refused.status_code == 403
        assert refused.json()["error"]["message"] == ("user not allowed to access this route. "
                                                      "Route=/v1/chat/completions is an admin only route")
        assert client.post("/v1/chat/completions", headers=ADMIN, json=CHAT).status_code == 200


def test_a_keys_allowed_routes(start_proxy, tmp_path) -> None:
    proxy = start_proxy({
        "model_list": [{"model_name": "fake-chat", "litellm_params": {"model": "fake/demo"}}],
        "general_settings": {"master_key": MASTER_KEY, "database_url": f"sqlite:///{tmp_path / 'p.db'}"}})
    with httpx.Client(base_url=proxy.base_url, timeout=30) as client:
        made = client.post("/key/generate", headers=ADMIN, json={"allowed_routes": ["/v1/models"]})
        auth = {"authorization": f"Bearer {made.json()['key']}"}
        assert client.get("/v1/models", headers=auth).status_code == 200
        refused = client.post("/v1/chat/completions", headers=auth, json=CHAT)
        assert refused.status_code == 403
        assert refused.json()["error"]["message"] == (
            "Virtual key is not allowed to call this route. Only allowed to call routes: ['/v1/models']. "
            "Tried to call route: /v1/chat/completions")
        # a route spelled differently is the same route
        assert client.post("/v1//chat/completions/", headers=auth, json=CHAT).status_code == 403
