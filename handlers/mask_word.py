"""Seed example: mask a word in every message before the upstream sees it."""

from trioproxy import CustomLogger, DualCache, UserAPIKeyAuth


class MaskWordHandler(CustomLogger):
    word = "litellm"

    async def async_pre_call_hook(self, user_api_key_dict: UserAPIKeyAuth, cache: DualCache, data: dict, call_type):
        for message in data.get("messages") or []:
            content = message.get("content")
            if isinstance(content, str) and self.word in content.lower():
                message["content"] = content.replace(self.word, "*" * len(self.word))
        return data


proxy_handler_instance = MaskWordHandler()
