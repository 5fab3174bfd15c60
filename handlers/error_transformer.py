"""Seed example: turn technical provider errors into messages users understand."""

from typing import Optional

import trioproxy
from trioproxy import CustomLogger, HTTPException, UserAPIKeyAuth


class MyErrorTransformer(CustomLogger):
    async def async_post_call_failure_hook(self, request_data: dict, original_exception: Exception,
                                           user_api_key_dict: UserAPIKeyAuth,
                                           traceback_str: Optional[str] = None) -> Optional[HTTPException]:
        if isinstance(original_exception, trioproxy.ContextWindowExceededError):
            return HTTPException(status_code=400,
                                 detail="Your prompt is too long. Please reduce the length and try again.")
        if isinstance(original_exception, trioproxy.RateLimitError):
            return HTTPException(status_code=429, detail="Rate limit exceeded. Please try again in a moment.")
        return None  # use the original exception


proxy_handler_instance = MyErrorTransformer()
