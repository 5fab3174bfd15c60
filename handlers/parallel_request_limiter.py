"""Seed example (simplified parallel request limiter): cap concurrent requests per API key.

The count lives in the proxy's shared ``DualCache``. It goes up in the pre-call hook and down once
the request is over: the proxy runs exactly one of the post-call success hook (for a stream: at its
end) or the failure hook (also for a client that disconnects), so the count cannot drift.
"""

import sys

from trioproxy import CustomLogger, DualCache, HTTPException, UserAPIKeyAuth

_COUNTED = "parallel_request_limiter_counted"


class ParallelRequestLimiter(CustomLogger):
    def __init__(self, max_parallel_requests: int | None = None):
        self.default_max = max_parallel_requests
        self.cache: DualCache | None = None

    @staticmethod
    def _key(user_api_key_dict: UserAPIKeyAuth) -> str:
        return f"{user_api_key_dict.api_key or 'anonymous'}_request_count"

    async def async_pre_call_hook(self, user_api_key_dict: UserAPIKeyAuth, cache: DualCache, data: dict, call_type):
        self.cache = cache
        limit = user_api_key_dict.max_parallel_requests or self.default_max or sys.maxsize
        key = self._key(user_api_key_dict)
        current = cache.get_cache(key=key) or 0
        if int(current) >= limit:
            raise HTTPException(status_code=429, detail="Max parallel request limit reached.")
        cache.set_cache(key, int(current) + 1)
        data.setdefault("metadata", {})[_COUNTED] = True
        return data

    def _release(self, data: dict, user_api_key_dict: UserAPIKeyAuth) -> None:
        metadata = data.get("metadata") or {}
        if self.cache is not None and metadata.pop(_COUNTED, False):
            key = self._key(user_api_key_dict)
            self.cache.set_cache(key, max(0, int(self.cache.get_cache(key=key) or 1) - 1))

    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: UserAPIKeyAuth, response):
        self._release(data, user_api_key_dict)

    async def async_post_call_failure_hook(self, request_data: dict, original_exception: Exception,
                                           user_api_key_dict: UserAPIKeyAuth, traceback_str=None):
        self._release(request_data, user_api_key_dict)


proxy_handler_instance = ParallelRequestLimiter(max_parallel_requests=10)
