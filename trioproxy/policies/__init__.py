"""The built-in request policies and guardrails, one small module each.

Every policy here is an ordinary handler object (a :class:`~trioproxy.handler.CustomGuardrail` or
:class:`~trioproxy.handler.CustomLogger` subclass): :mod:`trioproxy.builtins` maps config names to
factories, and the objects go through the same loader checks and the same scheduler as user
handlers, so their order and their errors follow the hook table in ``scheduler.py``.

=====================  =================================  ==========================================
config                 module                             phase
=====================  =================================  ==========================================
enforce_user_param     :mod:`.request_policies`           pre_call (policies run before everything)
enforced_params        :mod:`.request_policies`           pre_call
block_robots           :mod:`.robots`                     a route (``GET /robots.txt``)
hide_secrets           :mod:`.hide_secrets`               pre_call (callback or guardrail)
banned_keywords        :mod:`.banned_keywords`            pre_call
blocked_user_check     :mod:`.blocked_users`              pre_call + ``/customer/(un)block`` routes
llmguard_moderations   :mod:`.llm_guard`                  pre_call (it may rewrite the prompt)
=====================  =================================  ==========================================

``max_request_size_mb`` / ``max_response_size_mb`` are not hooks: the request limit is enforced
while the body is read (``app.py``) and the response limit while the upstream answer is read
(``pipeline.py``), because a hook would only see a body that was already read in full.
"""
