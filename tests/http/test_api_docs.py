"""``GET /openapi.json``, ``GET /docs`` and the Swagger UI's files, through a real ``trioproxy run``.

The document must describe every route the app serves (Quart's, the fast path's, the pass-through
endpoints) with who may call it; the page must load nothing from the network but the proxy.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from conftest import MASTER_KEY
from trioproxy.config import parse_config
from trioproxy.http.paths import ROUTES
from trioproxy.proxy import create_app

AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}
#: the docs' own routes: hidden from the document they serve
HIDDEN = {"/openapi.json", "/docs", "/swagger/{asset}"}


def _config(general: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"model_list": [{"model_name": "gpt-4o", "litellm_params": {"model": "fake/gpt-4o"}}],
            "litellm_settings": {"callbacks": ["blocked_user_check"]},
            "general_settings": {"master_key": MASTER_KEY, "block_robots": True, **(general or {}),
                                 "pass_through_endpoints": [
                                     {"path": "/bria", "target": "http://127.0.0.1:9/x", "include_subpath": True},
                                     {"path": "/hook", "target": "http://127.0.0.1:9/y", "auth": False,
                                      "methods": ["POST"]}]}}


def _quart_routes(config: dict[str, Any], tmp_path) -> set[tuple[str, str]]:
    """Every (path template, method) the Quart app registers, read from the app itself."""
    app = create_app(parse_config(config, str(tmp_path / "c.yaml"), tmp_path))
    out = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]*:)?([^>]+)>", r"{\1}", rule.rule)
        out |= {(path, m) for m in rule.methods if m not in ("HEAD", "OPTIONS")}
    return out


def test_the_document_describes_every_route_with_its_auth(start_proxy, tmp_path):
    config = _config()
    proxy = start_proxy(config)
    document = httpx.get(f"{proxy.base_url}/openapi.json", headers=AUTH).json()
    assert document["openapi"].startswith("3.")
    described = {(path, method.upper()) for path, ops in document["paths"].items() for method in ops}
    expected = {r for r in _quart_routes(config, tmp_path) if r[0] not in HIDDEN}
    expected |= {(path, "POST") for path in ROUTES}                                   # the fast path
    expected |= {(f"/openai/deployments/{{model}}/{e}", "POST") for e in ("chat/completions", "completions", "responses",
                                                                           "embeddings")}
    expected |= {(p, m) for p in ("/bria", "/bria/{subpath}") for m in ("GET", "POST", "PUT", "PATCH", "DELETE")}
    expected |= {("/hook", "POST")}
    assert described == expected
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            rule = op["x-trioproxy-rule"]
            assert op["description"].startswith("**Auth:**"), (path, method)
            assert op["security"] == ([] if rule == "public" else [{"bearerAuth": []}, {"apiKeyHeader": []}])
    paths = document["paths"]
    assert paths["/health/liveliness"]["get"]["x-trioproxy-rule"] == "public"
    assert paths["/v1/chat/completions"]["post"]["x-trioproxy-rule"] == "llm_api"
    assert paths["/customer/block"]["post"]["x-trioproxy-rule"] == "admin"
    assert paths["/bria/{subpath}"]["get"]["x-trioproxy-rule"] == "llm_api"
    assert paths["/hook"]["post"]["x-trioproxy-rule"] == "public"
    body = paths["/v1/chat/completions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"model", "messages"} <= set(body.get("required", [])) or "$ref" in json.dumps(body)
    assert set(document["components"]["securitySchemes"]) == {"bearerAuth", "apiKeyHeader"}


def test_docs_are_admin_only_unless_public(start_proxy):
    proxy = start_proxy(_config())
    for path in ("/openapi.json", "/docs"):
        assert httpx.get(f"{proxy.base_url}{path}").status_code == 401
        assert httpx.get(f"{proxy.base_url}{path}", headers={"Authorization": "Bearer sk-wrong-0000000"}).status_code == 401
        assert httpx.get(f"{proxy.base_url}{path}", headers=AUTH).status_code == 200
    public = start_proxy(_config({"public_routes": ["/docs", "/openapi.json"]}))
    assert httpx.get(f"{public.base_url}/openapi.json").status_code == 200
    assert httpx.get(f"{public.base_url}/docs").status_code == 200


def test_the_page_loads_nothing_from_elsewhere(start_proxy):
    proxy = start_proxy(_config({"public_routes": ["/docs"]}))
    page = httpx.get(f"{proxy.base_url}/docs")
    assert page.headers["content-type"].startswith("text/html")
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/swagger/") for s in sources), sources
    assert "validatorUrl: null" in page.text and "https://" not in page.text.split("spec:")[0]
    for source in sources:
        asset = httpx.get(f"{proxy.base_url}{source}")   # public: the UI's code, no data
        assert asset.status_code == 200 and len(asset.content) > 500, source
    assert httpx.get(f"{proxy.base_url}/swagger/swagger-ui-bundle.js").headers["content-type"].startswith(
        "application/javascript")
    assert httpx.get(f"{proxy.base_url}/swagger/index.html").status_code == 404   # only the listed files
    climbed = httpx.get(f"{proxy.base_url}/swagger/%2e%2e%2fdocs")      # normalised: /docs itself
    assert climbed.headers["content-type"].startswith("text/html") and "SwaggerUIBundle({" in climbed.text


def test_the_embedded_document_cannot_end_the_script(start_proxy):
    proxy = start_proxy(_config({"public_routes": ["/docs"]}), env={"DOCS_TITLE": "</script><b>x",
                                                                      "DOCS_DESCRIPTION": "a </script> b"})
    page = httpx.get(f"{proxy.base_url}/docs").text
    assert page.count("</script>") == 2            # the bundle's and the initialiser's, nothing more
    assert "<title>&lt;/script&gt;&lt;b&gt;x</title>" in page


def test_branding_and_filtering(start_proxy):
    proxy = start_proxy(_config(), env={"DOCS_TITLE": "ACME LLM gateway", "DOCS_DESCRIPTION": "Internal use only",
                                        "DOCS_FILTERED": "True"})
    document = httpx.get(f"{proxy.base_url}/openapi.json", headers=AUTH).json()
    assert document["info"]["title"] == "ACME LLM gateway"
    assert document["info"]["description"] == "Internal use only"
    assert set(document["paths"]) == {
        "/chat/completions", "/v1/chat/completions", "/completions", "/v1/completions", "/embeddings",
        "/v1/embeddings", "/models", "/v1/models", "/openai/deployments/{model}/chat/completions",
        "/openai/deployments/{model}/completions", "/openai/deployments/{model}/embeddings"}


def test_routes_allowed_routes_disables_are_left_out(start_proxy):
    proxy = start_proxy(_config({"allowed_routes": ["/v1/chat/completions", "/openapi.json"]}))
    document = httpx.get(f"{proxy.base_url}/openapi.json", headers=AUTH).json()
    assert set(document["paths"]) == {"/v1/chat/completions"}


@pytest.mark.parametrize("value", ["1", "true", "True", "yes"])
def test_docs_filtered_spellings(value):
    from trioproxy.http.routes.docs import docs_settings

    assert docs_settings({"DOCS_FILTERED": value})[2] is True
    assert docs_settings({})[2] is False
