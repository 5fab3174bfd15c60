"""``GET /public/model_hub`` (JSON) and ``GET /model_hub`` (a page for people): the public model groups.

Public routes (no key), listing only the model groups named in
``litellm_settings.public_model_groups``, in that order, one LiteLLM ``ModelGroupInfo`` object each
(``observability/model_info.py`` says where each field comes from). Nothing else of the config is
shown: no ``api_base``, no deployment, no key. The page is HTML rendered here from the same
records (no script, no build step, no CDN: the proxy may run offline). Both are still subject to
``allowed_ips`` and ``allowed_routes``.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from quart import Response, request

from ...observability.model_info import model_group_info
from ..errors import json_response
from ..gate import client_ip

if TYPE_CHECKING:
    from ...proxy import Proxy
    from ..app import ProxyApp

__all__ = ["register", "render_page"]

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Model hub</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #1f2933; }}
table {{ border-collapse: collapse; min-width: 60%; }}
th, td {{ text-align: left; padding: .45rem .9rem; border-bottom: 1px solid #d9e2ec; }}
th {{ background: #f0f4f8; }} td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
p.note {{ color: #52606d; }}
</style></head>
<body><h1>Model hub</h1>
<p class="note">The models this proxy offers. Prices are USD per million tokens; call them with the
OpenAI API at <code>/v1</code> and your key. The same list as JSON: <a href="/public/model_hub">/public/model_hub</a>.</p>
{body}
</body></html>
"""


def _per_million(value: Any) -> str:
    return f"{value * 1_000_000:,.4g}" if isinstance(value, int | float) else "—"


def _tokens(value: Any) -> str:
    return f"{int(value):,}" if isinstance(value, int | float) else "—"


def render_page(groups: list[dict[str, Any]]) -> str:
    """The hub's HTML: one row per model group (every value escaped)."""
    if not groups:
        body = "<p>No public models (<code>litellm_settings.public_model_groups</code> is empty).</p>"
    else:
        rows = "\n".join(
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td>"
            "<td class=n>{}</td></tr>".format(
                escape(g["model_group"]), escape(", ".join(g["providers"])), escape(str(g["mode"] or "")),
                _tokens(g["max_input_tokens"]), _per_million(g["input_cost_per_token"]),
                _per_million(g["output_cost_per_token"]))
            for g in groups)
        body = ("<table><thead><tr><th>model</th><th>providers</th><th>mode</th><th>context (tokens)</th>"
                "<th>input $/1M</th><th>output $/1M</th></tr></thead>\n<tbody>\n" + rows + "\n</tbody></table>")
    return _PAGE.format(body=body)


def register(app: ProxyApp, proxy: Proxy) -> None:
    services = proxy.services
    config = services.config
    names = [n for n in config.litellm.public_model_groups if n in config.model_groups]
    # the config never changes while the app runs: computed once, when first asked for
    cached: list[list[dict[str, Any]]] = []

    def groups() -> list[dict[str, Any]]:
        if not cached:
            cached.append([model_group_info(n, config.model_groups[n], services.cost) for n in names])
        return cached[0]

    async def authorize() -> None:
        await services.access.authorize(request.headers, request.path, "GET", client_ip(request.scope))

    async def public_model_hub() -> Response:
        """The public model groups, in LiteLLM's ModelGroupInfo shape (no key needed)."""
        await authorize()
        return json_response(200, groups())

    async def model_hub_page() -> Response:
        """The public model groups as a page for people (no key needed)."""
        await authorize()
        return Response(render_page(groups()), status=200, content_type="text/html; charset=utf-8")

    app.add_url_rule("/public/model_hub", endpoint="public_model_hub", view_func=public_model_hub, methods=["GET"])
    app.add_url_rule("/model_hub", endpoint="model_hub", view_func=model_hub_page, methods=["GET"])
