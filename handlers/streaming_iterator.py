"""Seed example: an async generator that sees (and may rewrite) the whole stream.

This one upper-cases the answer as it passes. Each handler's generator wraps the previous one's
output, in config order; the proxy always closes them, also when the client disconnects.
"""

from typing import Any, AsyncGenerator

from trioproxy import CustomLogger, ModelResponseStream, UserAPIKeyAuth


class ShoutingStream(CustomLogger):
    async def async_post_call_streaming_iterator_hook(self, user_api_key_dict: UserAPIKeyAuth, response: Any,
                                                      request_data: dict) -> AsyncGenerator[ModelResponseStream, None]:
        async for item in response:
            for choice in item.choices or []:
                if choice.delta and isinstance(choice.delta.content, str):
                    choice.delta.content = choice.delta.content.upper()
            yield item


proxy_handler_instance = ShoutingStream()
