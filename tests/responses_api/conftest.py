"""Fixtures of the Responses API translation tests: the translating server (one per session)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .translating_server import ServerThread


@pytest.fixture(scope="session")
def responses_server() -> Iterator[ServerThread]:
    with ServerThread() as server:
        yield server
