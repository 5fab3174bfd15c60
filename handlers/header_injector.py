"""Seed example: inject custom HTTP headers into every response (success and failure)."""

from typing import Any, Dict, Optional

from trioproxy import CustomLogger, UserAPIKeyAuth


class CustomHeaderLogger(CustomLogger):
    def __init__(self):
        super().__init__()

    async def async_post_call_response_headers_hook(self, data: dict, user_api_key_dict: UserAPIKeyAuth,
                                                    response: Any,
                                                    request_headers: Optional[Dict[str, str]] = None,
                                                    ) -> Optional[Dict[str, str]]:
        return {"x-custom-header": "custom-value"}


proxy_handler_instance = CustomHeaderLogger()
