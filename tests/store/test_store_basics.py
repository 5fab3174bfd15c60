"""URLs, money and durations: the small value types every part of the store agrees on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from trioproxy.store.durations import InvalidDuration, parse_duration
from trioproxy.store.money import from_micros, to_micros
from trioproxy.store.url import (
    InvalidDatabaseURL,
    database_url_from_config_file,
    parse_database_url,
)


@pytest.mark.parametrize("url, kind, target", [
    ("sqlite:///proxy.db", "sqlite", "proxy.db"),
    ("sqlite:////var/lib/tp/proxy.db", "sqlite", "/var/lib/tp/proxy.db"),
    ("postgresql://u:p@h:5432/db", "postgresql", "postgresql://u:p@h:5432/db"),
    ("postgres://u@h/db", "postgresql", "postgresql://u@h/db"),
])
def test_database_urls(url: str, kind: str, target: str) -> None:
    parsed = parse_database_url(url)
    assert (parsed.kind, parsed.target) == (kind, target)


def test_postgres_password_is_redacted() -> None:
    parsed = parse_database_url("postgresql://user:s3cret@db:5432/x")
    assert "s3cret" not in parsed.redacted() and "s3cret" not in repr(parsed)
    assert parsed.sqlalchemy_url.startswith("postgresql+psycopg://")


@pytest.mark.parametrize("url, words", [
    ("", "empty"), ("mysql://h/db", "unsupported"), ("sqlite:///:memory:", "in-memory"),
    ("sqlite://", "file path"), ("proxy.db", "not a URL"),
])
def test_bad_database_urls(url: str, words: str) -> None:
    with pytest.raises(InvalidDatabaseURL, match=words):
        parse_database_url(url)


def test_database_url_from_config(tmp_path, monkeypatch) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("general_settings:\n  database_url: os.environ/TP_DB\n")
    monkeypatch.setenv("TP_DB", "sqlite:///x.db")
    # a relative SQLite path in the config is relative to the config file, as `trioproxy run` reads it
    assert database_url_from_config_file(cfg) == f"sqlite:///{tmp_path / 'x.db'}"
    monkeypatch.setenv("TP_DB", "sqlite:////abs/x.db")
    assert database_url_from_config_file(cfg) == "sqlite:////abs/x.db"
    monkeypatch.delenv("TP_DB")
    with pytest.raises(InvalidDatabaseURL, match="TP_DB"):
        database_url_from_config_file(cfg)
    cfg.write_text("model_list: []\n")
    monkeypatch.setenv("DATABASE_URL", "sqlite:///env.db")
    assert database_url_from_config_file(cfg) == "sqlite:///env.db"


def test_money_is_exact_micros() -> None:
    assert to_micros(0.1) == 100_000
    assert to_micros(10) == 10_000_000
    assert to_micros("0.0000015") == 2           # half-even at the micro
    assert to_micros(None) is None
    assert from_micros(2_500_000) == 2.5
    assert sum(to_micros(0.1) for _ in range(10)) == to_micros(1.0)
    with pytest.raises(ValueError):
        to_micros(float("nan"))
    with pytest.raises(ValueError):
        to_micros(True)


@pytest.mark.parametrize("text, expected", [
    ("30s", datetime(2026, 1, 31, 0, 0, 30, tzinfo=UTC)),
    ("5m", datetime(2026, 1, 31, 0, 5, tzinfo=UTC)),
    ("2h", datetime(2026, 1, 31, 2, 0, tzinfo=UTC)),
    ("1d", datetime(2026, 2, 1, tzinfo=UTC)),
    ("1w", datetime(2026, 2, 7, tzinfo=UTC)),
    ("1mo", datetime(2026, 2, 28, tzinfo=UTC)),     # calendar month, clamped
    ("13mo", datetime(2027, 2, 28, tzinfo=UTC)),
])
def test_durations(text: str, expected: datetime) -> None:
    assert parse_duration(text).after(datetime(2026, 1, 31, tzinfo=UTC)) == expected


@pytest.mark.parametrize("text", ["3x", "", "1.5h", "-1d", "0s", "d", "10 d", "1M"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(InvalidDuration):
        parse_duration(text)
