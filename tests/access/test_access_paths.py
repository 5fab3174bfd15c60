"""Path normalisation: every spelling of a path becomes one string (trioproxy/access/paths.py)."""

from __future__ import annotations

import pytest

from trioproxy.access import BadPathError, normalize_path
from trioproxy.errors import error_body


@pytest.mark.parametrize("raw, expected", [
    ("/key/generate", "/key/generate"),
    ("/key/generate/", "/key/generate"),                 # trailing slash
    ("//key//generate", "/key/generate"),                # doubled slashes
    ("/key%2Fgenerate", "/key/generate"),                # %2F is a separator (as Hypercorn reads it)
    ("/key%2fgenerate", "/key/generate"),
    ("/%6Bey/generate", "/key/generate"),                # any percent-encoded character
    ("/v1/../key/generate", "/key/generate"),            # dot-dot
    ("/v1/%2e%2e/key/generate", "/key/generate"),        # encoded dot-dot
    ("/v1/%2E%2E%2Fkey/generate", "/key/generate"),
    ("/./key/./generate/.", "/key/generate"),            # dot segments
    ("/../../key/generate", "/key/generate"),            # dot-dot above the root stays at the root
    ("/key/generate?x=/../admin", "/key/generate"),      # the query is not part of the path
    ("/", "/"),
    ("//", "/"),
    ("/a%252Fb", "/a%2Fb"),                              # decoded exactly once
    ("/Key/Generate", "/Key/Generate"),                  # case kept
    ("/a;b", "/a;b"),                                    # no matrix parameters
    ("/caf%C3%A9", "/café"),
])
def test_spellings_normalise_to_one_path(raw, expected):
    assert normalize_path(raw) == expected
    assert normalize_path(raw.encode()) == expected       # ASGI raw_path is bytes


@pytest.mark.parametrize("raw, why", [
    ("key/generate", "must start with '/'"),
    ("/key%00/generate", "control characters"),
    ("/key\x00/generate", "control characters"),
    ("/key%0A/generate", "control characters"),
    ("/%ff%fe", "percent-escapes do not decode to UTF-8"),
])
def test_unnormalisable_paths_are_a_400(raw, why):
    with pytest.raises(BadPathError) as info:
        normalize_path(raw)
    assert info.value.status_code == 400
    assert why in info.value.message
    assert error_body(info.value)["error"]["param"] == "path"


def test_raw_non_ascii_bytes_are_read_as_utf8():
    assert normalize_path("/café".encode()) == "/café"
    with pytest.raises(BadPathError):
        normalize_path(b"/\xff\xfe")
