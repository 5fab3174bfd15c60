"""Seed example: a moderation hook, run in parallel with the upstream call.

If it raises, the upstream request is cancelled (its connection closed, so no tokens are wasted)
and the client receives this error.
"""

from trioproxy import CustomLogger, HTTPException


class MyCustomHandler(CustomLogger):
    def __init__(self):
        pass

    async def async_moderation_hook(self, data: dict):
        messages = data["messages"]
        if messages[0]["content"].lower() == "hello world":
            raise HTTPException(status_code=400, detail={"error": "Violated content safety policy"})


proxy_handler_instance = MyCustomHandler()
