"""Response objects with attribute access, as handler files from the seeds expect.

Why dicts and not pydantic models: the proxy relays JSON. A response is parsed once (orjson) into
plain dicts; wrapping it in these classes costs nothing until a handler touches a field. Access
wraps lazily and stores the wrapper back in place, so ``response.choices[0].message.content = "x"``
changes the very dict that is serialised for the client: what a hook changes is what the client
receives. Because they are ``dict`` subclasses, orjson serialises them directly.

Missing fields read as ``None`` (as the seeds' pydantic models give ``None`` for unset optional
fields); names starting with ``_`` are never treated as fields, so copy/pickle protocols behave.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "Choices",
    "Delta",
    "EmbeddingResponse",
    "Message",
    "ModelResponse",
    "ModelResponseStream",
    "OpenAIObject",
    "StreamingChoices",
    "TextChoices",
    "TextCompletionResponse",
    "Usage",
    "wrap_response",
]


class OpenAIObject(dict):
    """A dict whose keys are also attributes; nested dicts/lists wrap lazily on access."""

    #: key -> wrapper class for a nested dict, or for the dict elements of a nested list
    _child_types: ClassVar[dict[str, type[OpenAIObject]]] = {}

    def __init__(self, data: dict[str, Any] | None = None, /, **fields: Any) -> None:
        if data is not None:
            super().__init__(data)
            if fields:
                self.update(fields)
        else:
            super().__init__(fields)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            value = dict.__getitem__(self, name)
        except KeyError:
            return None
        return self._wrap_child(name, value)

    def __getitem__(self, key: str) -> Any:
        return self._wrap_child(key, dict.__getitem__(self, key))

    def get(self, key: str, default: Any = None) -> Any:
        if key in self:
            return self[key]
        return default

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def _wrap_child(self, key: str, value: Any) -> Any:
        if type(value) is dict:
            wrapped = self._child_types.get(key, OpenAIObject)(value)
            dict.__setitem__(self, key, wrapped)
            return wrapped
        if type(value) is list:
            wrapped_list = AttrList(value, self._child_types.get(key, OpenAIObject))
            dict.__setitem__(self, key, wrapped_list)
            return wrapped_list
        return value

    # pydantic-style helpers some handler files call
    def model_dump(self, **_: Any) -> dict[str, Any]:
        return dict(self)

    def dict(self, **_: Any) -> dict[str, Any]:
        return dict(self)

    def json(self, **_: Any) -> str:
        import orjson

        return orjson.dumps(self).decode()


class AttrList(list):
    """A list whose dict elements wrap lazily (into ``element_type``) when read."""

    __slots__ = ("_element_type",)

    def __init__(self, items: list[Any], element_type: type[OpenAIObject]) -> None:
        super().__init__(items)
        self._element_type = element_type

    def _wrap_at(self, index: int) -> Any:
        value = list.__getitem__(self, index)
        if type(value) is dict:
            value = self._element_type(value)
            list.__setitem__(self, index, value)
        elif type(value) is list:
            value = AttrList(value, OpenAIObject)
            list.__setitem__(self, index, value)
        return value

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self._wrap_at(i) for i in range(*index.indices(len(self)))]
        return self._wrap_at(index)

    def __iter__(self):  # type: ignore[override]
        for i in range(len(self)):
            yield self._wrap_at(i)


class Usage(OpenAIObject):
    pass


class Message(OpenAIObject):
    pass


class Delta(OpenAIObject):
    pass


class Choices(OpenAIObject):
    _child_types = {"message": Message}


class StreamingChoices(OpenAIObject):
    _child_types = {"delta": Delta}


class TextChoices(OpenAIObject):
    pass


class ModelResponse(OpenAIObject):
    """A ``chat.completion`` object."""

    _child_types = {"choices": Choices, "usage": Usage}


class ModelResponseStream(OpenAIObject):
    """One ``chat.completion.chunk`` of a stream."""

    _child_types = {"choices": StreamingChoices, "usage": Usage}


class TextCompletionResponse(OpenAIObject):
    _child_types = {"choices": TextChoices, "usage": Usage}


class EmbeddingResponse(OpenAIObject):
    _child_types = {"usage": Usage}


_BY_OBJECT = {
    "chat.completion": ModelResponse,
    "chat.completion.chunk": ModelResponseStream,
    "text_completion": TextCompletionResponse,
    "list": EmbeddingResponse,
}


def wrap_response(body: Any) -> Any:
    """Wrap a parsed upstream body in the class its ``object`` field names (cheap: no deep copy)."""
    if type(body) is not dict:
        return body
    return _BY_OBJECT.get(body.get("object"), OpenAIObject)(body)
