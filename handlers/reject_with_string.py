"""Seed example: return a string from the pre-call hook and the user receives it as the answer.

Chat and text completions answer 200 with the string as the assistant's reply (streamed when the
request streams); every other endpoint answers 400 with the string as the error message.
"""

from trioproxy import CustomLogger, DualCache, UserAPIKeyAuth, get_formatted_prompt


class MyCustomHandler(CustomLogger):
    def __init__(self):
        pass

    async def async_pre_call_hook(self, user_api_key_dict: UserAPIKeyAuth, cache: DualCache, data: dict, call_type):
        formatted_prompt = get_formatted_prompt(data=data, call_type=call_type)
        if "Hello world" in formatted_prompt:
            return "This is an invalid response"
        return data


proxy_handler_instance = MyCustomHandler()
