"""Seed example: rewrite the request in the pre-call hook (here: which model it goes to)."""

from typing import Literal

from trioproxy import CustomLogger, DualCache, UserAPIKeyAuth


class MyCustomHandler(CustomLogger):
    def __init__(self):
        pass

    async def async_pre_call_hook(self, user_api_key_dict: UserAPIKeyAuth, cache: DualCache, data: dict,
                                  call_type: Literal["completion", "text_completion", "embeddings",
                                                     "image_generation", "moderation", "audio_transcription"]):
        data["model"] = "my-new-model"
        return data


proxy_handler_instance = MyCustomHandler()
