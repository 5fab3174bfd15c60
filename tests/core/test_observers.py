"""The pipeline's observers: an explicit list fixed at construction, each call guarded the same way."""

from __future__ import annotations

from typing import Any

from support.inprocess import call, chat_body, make_pipeline


class Broken:
    """Raises at every moment it is told about."""

    def on_request_start(self, ctx: Any) -> None:
        raise RuntimeError("start")

    def on_upstream_request(self, ctx: Any) -> None:
        raise RuntimeError("upstream")

    def on_success(self, ctx: Any) -> None:
        raise RuntimeError("success")


class Recorder:
    """Only the moments it defines (every method is optional)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_upstream_request(self, ctx: Any) -> None:
        self.seen.append("upstream")

    def on_success(self, ctx: Any) -> None:
        self.seen.append("success")


async def test_an_observer_that_raises_breaks_neither_the_request_nor_the_next_observer() -> None:
    recorder = Recorder()
    pipeline = make_pipeline(observers=[Broken(), recorder])
    response = await call(pipeline, chat_body())
    assert response.status == 200
    assert recorder.seen == ["upstream", "success"]


async def test_observers_are_fixed_when_the_pipeline_is_built() -> None:
    recorder = Recorder()
    pipeline = make_pipeline(observers=[recorder])
    assert pipeline.observers.observers == (recorder,)
    await call(pipeline, chat_body())
    assert recorder.seen == ["upstream", "success"]
