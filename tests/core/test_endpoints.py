"""The proxy endpoints' bodies (``core/endpoints.py``): what a request must be before any hook runs."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from support.inprocess import call, chat_body, make_pipeline


@pytest.mark.parametrize("field", ["metadata", "cache"])
@pytest.mark.parametrize("value", ["x", 5, [1]])
async def test_proxy_only_fields_of_the_wrong_shape_are_a_400(field: str, value: Any) -> None:
    """``metadata: "x"`` (and ``cache: "x"`` with caching off) were accepted and silently dropped."""
    response = await call(make_pipeline(), chat_body(**{field: value}))
    assert response.status == 400, response.body
    error = orjson.loads(response.body)["error"]
    assert error["param"] == field and error["code"] == "invalid_type"
    ok = await call(make_pipeline(), chat_body(**{field: None}))
    assert ok.status == 200
