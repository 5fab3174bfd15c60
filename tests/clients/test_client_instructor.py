"""instructor (structured outputs on the OpenAI SDK) against a real trioproxy.

Its default mode (``Mode.TOOLS``) needs the model to call the tool it defines from the response
model: the fake provider calls the first tool with arguments built from its schema. ``Mode.JSON``
puts the schema in the system message and asks for ``json_object``; ``Mode.JSON_SCHEMA`` sends it
as ``response_format`` json_schema.
"""

from __future__ import annotations

from collections.abc import Iterable

import instructor
import openai
import pydantic
import pytest
from instructor.core import InstructorRetryException

from .conftest import CHAT, OVERLOADED, ClientProxy

MESSAGES = [{"role": "user", "content": "John Doe is 30 years old and lives in Paris."}]


class Address(pydantic.BaseModel):
    city: str
    country: str = "France"


class User(pydantic.BaseModel):
    name: str
    age: int = pydantic.Field(ge=18, le=130)
    address: Address
    tags: list[str]


EXPECTED = User(name="fake", age=18, address=Address(city="fake", country="fake"), tags=["fake"])


def client(proxy: ClientProxy, mode: instructor.Mode = instructor.Mode.TOOLS, key: str | None = None):
    return instructor.from_openai(openai.OpenAI(base_url=proxy.url, api_key=key or proxy.key, max_retries=0), mode=mode)


@pytest.mark.parametrize("mode", [instructor.Mode.TOOLS, instructor.Mode.JSON,
                                  instructor.Mode.JSON_SCHEMA])
def test_response_model(client_proxy: ClientProxy, mode: instructor.Mode) -> None:
    user = client(client_proxy, mode).chat.completions.create(model=CHAT, response_model=User, messages=MESSAGES)
    assert user.model_dump() == EXPECTED.model_dump()


def test_default_mode_is_tools(client_proxy: ClientProxy) -> None:
    assert instructor.from_openai(openai.OpenAI(base_url=client_proxy.url, api_key=client_proxy.key)).mode is \
        instructor.Mode.TOOLS


def test_create_with_completion(client_proxy: ClientProxy) -> None:
    user, completion = client(client_proxy).chat.completions.create_with_completion(
        model=CHAT, response_model=User, messages=MESSAGES)
    assert user.model_dump() == EXPECTED.model_dump() and completion.choices[0].finish_reason == "tool_calls"


def test_partial_stream(client_proxy: ClientProxy) -> None:
    partials = list(client(client_proxy).chat.completions.create_partial(model=CHAT, response_model=User,
                                                                         messages=MESSAGES))
    assert len(partials) > 1 and partials[-1].model_dump() == EXPECTED.model_dump()


def test_iterable(client_proxy: ClientProxy) -> None:
    users = list(client(client_proxy).chat.completions.create_iterable(model=CHAT, response_model=User,
                                                                       messages=MESSAGES))
    assert [u.model_dump() for u in users] == [EXPECTED.model_dump()]


def test_iterable_type_hint(client_proxy: ClientProxy) -> None:
    users = client(client_proxy).chat.completions.create(model=CHAT, response_model=Iterable[User], messages=MESSAGES)
    assert [u.model_dump() for u in users] == [EXPECTED.model_dump()]


async def test_async_client_under_trio(client_proxy: ClientProxy) -> None:
    async_client = instructor.from_openai(openai.AsyncOpenAI(base_url=client_proxy.url, api_key=client_proxy.key,
                                                             max_retries=0))
    user = await async_client.chat.completions.create(model=CHAT, response_model=User, messages=MESSAGES)
    assert user.model_dump() == EXPECTED.model_dump()


def test_errors_surface_as_openai_exceptions(client_proxy: ClientProxy) -> None:
    with pytest.raises(InstructorRetryException) as info:
        client(client_proxy, key="sk-wrong-key").chat.completions.create(
            model=CHAT, response_model=User, messages=MESSAGES, max_retries=1)
    assert isinstance(info.value.__cause__, openai.AuthenticationError)
    with pytest.raises(InstructorRetryException) as missing:
        client(client_proxy).chat.completions.create(model="no-such-model", response_model=User, messages=MESSAGES,
                                                     max_retries=1)
    assert isinstance(missing.value.__cause__, openai.NotFoundError)
    with pytest.raises(InstructorRetryException) as limited:
        client(client_proxy).chat.completions.create(model=OVERLOADED, response_model=User, messages=MESSAGES,
                                                     max_retries=1)
    assert isinstance(limited.value.__cause__, openai.RateLimitError)
