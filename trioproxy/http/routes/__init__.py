"""The Quart routes, one module per group; each has ``register(app, proxy)``.

=============  ===========================================================  =====================
module         routes                                                       who may call
=============  ===========================================================  =====================
models.py      ``GET /models``, ``/v1/models``, ``/v1/models/{model}``,      any valid key
               ``/model/info``, ``/v1/model/info``
health.py      ``GET /health/liveliness`` (``/health/liveness``), ``/readiness``   anyone
               ``GET /health`` (calls every deployment)                     the proxy admin
metrics.py     ``GET /metrics``                                             any valid key, or anyone
                                                                            (``metrics_public``)
customers.py   ``POST /customer/block``, ``/customer/unblock``              the proxy admin
               (only with ``blocked_user_check`` and no database)
robots.py      ``GET /robots.txt`` (only with ``block_robots``)             anyone
admin.py       the management API: ``/key/*``, ``/team/*``, ``/user/*``,    by route (``admin/access.py``,
               ``/customer/*``, ``/end_user/*``, ``/budget/new``,             docs/keys.md)
               ``GET /audit``, ``/audit/{id}`` (``admin.ROUTES``)
model_hub.py   ``GET /public/model_hub`` (JSON), ``/model_hub`` (a page)    anyone
docs.py        ``GET /openapi.json``, ``/docs``; ``/swagger/<file>``        proxy admins unless in
                                                                            ``public_routes``;
                                                                            the UI's files: anyone
spend.py       ``/spend/logs``, ``/spend/tags``, ``/global/spend*``,          by route, as admin.py
               ``/spend/calculate`` (``spend.SPEND_ROUTES``)                  (docs/spend.md)
route_list.py  ``GET /routes`` (every route and its methods)                any valid key
=============  ===========================================================  =====================

The proxy endpoints themselves (chat completions, completions, embeddings) and the pass-through
endpoints are not Quart routes: ``http/asgi.py`` serves them in front of the app. A new route group is a module here, registered
in ``http/app.py``; it authenticates through ``http/auth.py``.
"""
