"""Observability: what each request cost, and telling the operator about it, off the request path.

* ``observer.py``: :class:`~.observer.RequestObserver`, the pipeline's observer (O(1), never awaits);
* ``sink.py`` / ``payload.py`` / ``callbacks.py``: the logging sink (bounded queue, workers,
  shutdown drain), the ``kwargs`` and ``standard_logging_object`` handed to callbacks, and loading
  the callback functions; ``error_throttle.py`` rate-limits a failing callback's log lines;
  ``logfmt.py`` is ``--log-format json``;
* ``metrics.py``: the Prometheus metrics (``GET /metrics`` is ``http/routes/metrics.py``);
* ``cost.py``: the final cost, settled once per request; ``prices.py``: the price table;
  ``tokens.py``: the token estimator (when an upstream reports no usage).

Private by convention. May import: ``hooks`` (loading callbacks), ``config``, ``context``,
``prompt``, ``masking``, ``errors``.
"""
