"""The event loop `puente serve` picks: asyncio's own for the embedded default, one SQLite worker
(under uvloop one read in a hundred took 5-20 times the median: bench/RESULTS.md, session 13),
uvicorn's own choice (uvloop, installed with uvicorn[standard]) for several workers and on
PostgreSQL, and whichever PUENTE_EVENT_LOOP names.
tests/edges/test_logs.py checks that a running server's worker says which loop it runs on."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cli.event_loop import event_loop_for
from settings import Settings

SQLITE = "sqlite+aiosqlite:///./puente.db"
POSTGRES = "postgresql+asyncpg://puente@127.0.0.1:5432/puente"


def test_auto_takes_asyncio_for_one_sqlite_worker_only(monkeypatch):
    monkeypatch.delenv("PUENTE_EVENT_LOOP", raising=False)
    assert event_loop_for(Settings(database_url=SQLITE), workers=1) == "asyncio"
    absolute = Settings(database_url="sqlite+aiosqlite:////var/lib/puente/puente.db")
    assert event_loop_for(absolute, workers=1) == "asyncio"
    # Several workers share the listening socket: asyncio's accept would hand one of them the burst.
    # "auto" is uvicorn's own choice: uvloop where installed (tests/edges/test_logs.py sees it run).
    assert event_loop_for(Settings(database_url=SQLITE), workers=2) == "auto"
    assert event_loop_for(Settings(database_url=POSTGRES), workers=1) == "auto"
    assert event_loop_for(Settings(database_url=POSTGRES), workers=4) == "auto"


def test_a_named_loop_is_kept_whatever_the_database_and_workers(monkeypatch):
    monkeypatch.setenv("PUENTE_EVENT_LOOP", "uvloop")
    assert event_loop_for(Settings(database_url=SQLITE), workers=1) == "uvloop"
    monkeypatch.setenv("PUENTE_EVENT_LOOP", "asyncio")
    assert event_loop_for(Settings(database_url=POSTGRES), workers=2) == "asyncio"


def test_an_unknown_loop_is_refused_at_start(monkeypatch):
    monkeypatch.setenv("PUENTE_EVENT_LOOP", "trio")
    with pytest.raises(ValidationError, match="event_loop"):
        Settings()
