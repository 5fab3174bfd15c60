"""Helpers of the coordination tests: a fake clock, and a redis-server of the test's own."""

from __future__ import annotations


class FakeClock:
    """Unix seconds that only move when a test says so (injected into both limiters)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
