"""The HTTP surface: what Hypercorn serves.

* ``asgi.py``: the fast path: the three proxy endpoints as plain ASGI (request bounds, the
  in-flight cap, the body, the client's leaving: ``core/disconnect.py`` on HTTP/1.x, a watcher task otherwise), in front of the Quart app;
* ``app.py``: the Quart-Trio app for everything else, and the lifespan (starts and drains the
  proxy's services);
* ``routes/``: one module per route group (models, health, metrics, customers, robots);
* ``auth.py``: who calls a Quart route (the container's ``Authenticator``, at one place);
* ``errors.py``: error envelopes as responses; ``paths.py``: which paths are the proxy endpoints.

Private by convention. May import: ``core``, ``observability``, ``auth``, ``config``, ``context``
and the leaves. What it serves is built by ``proxy.py``.
"""
