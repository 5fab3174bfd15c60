"""Keep what one test reads through a secret manager from leaking into the next test.

Values read from a manager are remembered process-wide for the scrubber (``ProxyConfig.secrets()``
adds them): right for a proxy process (one config), wrong across tests sharing one pytest process,
where another test's ``config.secrets()`` would suddenly hold them. Test modules that read through
managers in-process use :func:`isolated_secret_registry` (autouse).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from trioproxy.secret_managers import base, resolve

__all__ = ["isolated_secret_registry"]


@pytest.fixture(autouse=True)
def isolated_secret_registry() -> Iterator[None]:
    saved_values, saved_last = set(base._RESOLVED), resolve._LAST
    yield
    base._RESOLVED.clear()
    base._RESOLVED.update(saved_values)
    resolve._LAST = saved_last
