"""The models this proxy serves: OpenAI's ``GET /v1/models`` and ``GET /v1/models/{model}``, and
LiteLLM's ``GET /model/info`` (``/v1/model/info``).

Any valid key may call them; a virtual key sees the models its ``models`` allow-list, and its
team's, let it call (another is a 404, as OpenAI answers); a JWT listing several teams
(``team_ids_jwt_field``) sees the models one of its teams may call (the team a request for that
model would be bound to). ``/model/info`` describes each deployment as LiteLLM does
(``model_name``, ``litellm_params``, ``model_info``) without anything secret: ``litellm_params`` has
the ``model`` (``provider/name``), the ``api_base`` masked as operators see it, and the request
parameters the deployment sets; never a key, a header value or a credential-like setting.
``model_info`` is the config's, plus what the proxy knows: a stable ``id`` (LiteLLM's
``litellm_model_id``, which ``?litellm_model_id=`` filters by), the price per token it bills at and
the ``mode``.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import orjson
from quart import Response, request

from ...auth import Authenticator, Identity, TeamModelAccessDenied, may_use_model
from ...errors import NotFoundError
from ..auth import identity
from ..errors import json_response

if TYPE_CHECKING:
    from ...config import Deployment
    from ...proxy import Proxy
    from ..app import ProxyApp

__all__ = ["register"]


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "trioproxy"}


async def _may_use(auth: Authenticator, who: Identity, model: str) -> bool:
    """Whether ``who`` may call ``model``; a several-teams JWT through the team that would serve it."""
    if who.record is None:
        return True
    try:
        bound = await auth.for_request(who, model, request.headers)
    except TeamModelAccessDenied:
        return False
    return may_use_model(bound.record, model)


def deployment_id(deployment: Deployment) -> str:
    """A deployment's stable id (LiteLLM's ``model_info.id``): the same config gives the same ids."""
    seed = f"{deployment.index}:{deployment.model_name}:{deployment.provider}/{deployment.upstream_model}"
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


def _info(deployment: Deployment, proxy: Proxy) -> dict[str, Any]:
    params: dict[str, Any] = {"model": f"{deployment.provider}/{deployment.upstream_model}", **deployment.extra_params}
    if deployment.api_base:
        params["api_base"] = deployment.safe_api_base
    price = proxy.services.cost.price(deployment)
    info: dict[str, Any] = dict(deployment.model_info) if isinstance(deployment.model_info, dict) else {}
    info.setdefault("mode", "chat")
    info.update({"id": deployment_id(deployment),
                 "input_cost_per_token": price.input_cost_per_token if price else None,
                 "output_cost_per_token": price.output_cost_per_token if price else None})
    return {"model_name": deployment.model_name, "litellm_params": params, "model_info": info}


def register(app: ProxyApp, proxy: Proxy) -> None:
    services = proxy.services

    @app.get("/models")
    @app.get("/v1/models")
    async def models() -> Response:
        who = await identity(services.authenticator)
        names = services.router.model_names
        if who.record is not None:
            names = [name for name in names if await _may_use(services.authenticator, who, name)]
        data = [_model(name) for name in names]
        return json_response(200, {"object": "list", "data": data})

    @app.get("/models/<path:model>")
    @app.get("/v1/models/<path:model>")
    async def model(model: str) -> Response:
        who = await identity(services.authenticator)
        allowed = await _may_use(services.authenticator, who, model)
        if model not in services.router.model_names or not allowed:
            raise NotFoundError(f"The model {model!r} does not exist. GET /v1/models lists the available models.",
                                param="model")
        return json_response(200, _model(model))

    @app.get("/model/info")
    @app.get("/v1/model/info")
    async def model_info() -> Response:
        who = await identity(services.authenticator)
        wanted = request.args.get("litellm_model_id")
        data = [_info(d, proxy) for d in services.config.deployments
                if (wanted is None or deployment_id(d) == wanted)
                and await _may_use(services.authenticator, who, d.model_name)]
        # nothing secret is put in; the scrubber is the second line (a configured key anywhere in a value)
        body = services.scrubber.scrub(orjson.dumps({"data": data}).decode())
        return Response(body, status=200, content_type="application/json")
