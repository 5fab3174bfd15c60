"""Seed example: a CustomLogger with every logging method (``docs/logging.md``).

Each method prints, as in the seeds; ``states`` and ``errors`` are what the seeds' cache-hit test
counts (two identical calls with the response cache on: ``pre, post, success, success``).

When a handler defines both the sync and the ``async_`` form of an event (as this one does for
success and failure), trioproxy calls the async form only, once per request: calling both would
log every request twice. Sync methods run in worker threads, never on the proxy's event loop.

    litellm_settings:
      callbacks: handlers.custom_logger.proxy_handler_instance
"""

from trioproxy import CustomLogger


class MyCustomHandler(CustomLogger):
    def __init__(self):
        self.states = []
        self.errors = []

    def log_pre_api_call(self, model, messages, kwargs):
        print("Pre-API Call")
        self.states.append("pre")

    def log_post_api_call(self, kwargs, response_obj, start_time, end_time):
        print("Post-API Call")
        self.states.append("post")

    def log_success_event(self, kwargs, response_obj, start_time, end_time):
        print("On Success")
        self.states.append("success")

    def log_failure_event(self, kwargs, response_obj, start_time, end_time):
        print("On Failure")
        self.states.append("failure")

    #### ASYNC #### - what the proxy calls when both forms exist
    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        print("On Async Success")
        print(f"Value of Cache hit: {kwargs['cache_hit']}")
        self.states.append("success")

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        print("On Async Failure")
        self.states.append("failure")


customHandler = MyCustomHandler()
proxy_handler_instance = customHandler
