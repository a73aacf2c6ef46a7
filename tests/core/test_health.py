"""GET /healthz: the engine runs and a real journal takes a real write; answers are cached briefly."""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp
import pytest

from core.api import ApiServer
from core.clock import FakeClock
from core.config import JournalConfig
from core.health import HEALTH_STATE_KEY, Health, HealthProbe
from core.journal import Journal


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    j = Journal.open(tmp_path / "faultwatch.db", JournalConfig(), FakeClock())
    yield j  # type: ignore[misc]
    j.close()


def make_probe(journal: Journal, clock: FakeClock, running: list[bool]) -> HealthProbe:
    return HealthProbe(lambda: running[0], lambda: journal.save_state(HEALTH_STATE_KEY, clock.wall()), clock)


def test_healthy_engine_writes_the_journal(journal: Journal) -> None:
    clock = FakeClock()
    health = make_probe(journal, clock, [True])()
    assert health == Health(True, (("engine", "ok"), ("journal", "ok")))
    # The probe really committed: the value is there for anyone reading the file.
    assert journal.load_state(HEALTH_STATE_KEY) == clock.wall()


def test_closed_journal_is_unhealthy_with_a_fixed_word_and_a_logged_reason(
        journal: Journal, caplog: pytest.LogCaptureFixture) -> None:
    probe = make_probe(journal, FakeClock(), [True])
    journal.close()
    with caplog.at_level(logging.WARNING, logger="core.engine"):
        health = probe()
    assert not health.ok
    assert dict(health.checks) == {"engine": "ok", "journal": "not writable"}
    assert any("journal is closed" in r.getMessage() for r in caplog.records)


def test_stopping_engine_is_unhealthy_and_writes_nothing(journal: Journal) -> None:
    probe = make_probe(journal, FakeClock(), [False])
    health = probe()
    assert dict(health.checks) == {"engine": "stopped", "journal": "closed"}
    assert journal.load_state(HEALTH_STATE_KEY) is None


def test_answer_is_cached_for_a_second_then_probed_again(journal: Journal) -> None:
    clock = FakeClock()
    running = [True]
    probe = make_probe(journal, clock, running)
    assert probe().ok
    first = journal.load_state(HEALTH_STATE_KEY)
    running[0] = False
    clock.advance_sync(0.5)
    assert probe().ok  # cached: a caller polling in a loop does not write each time
    assert journal.load_state(HEALTH_STATE_KEY) == first
    clock.advance_sync(0.6)
    assert not probe().ok


def test_recovers_when_writes_work_again(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    failing = [True]

    def write() -> None:
        if failing[0]:
            raise OSError(28, "No space left on device")
    probe = HealthProbe(lambda: True, write, clock)
    with caplog.at_level(logging.INFO, logger="core.engine"):
        assert not probe().ok
        clock.advance_sync(2)
        assert not probe().ok
        failing[0] = False
        clock.advance_sync(2)
        assert probe().ok
    messages = [r.getMessage() for r in caplog.records]
    # One warning per change of state, not one per probe.
    assert sum("journal write failed" in m for m in messages) == 1
    assert any("writable again" in m for m in messages)


class _NoControl:
    """/healthz never touches the engine's control surface."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"/healthz called {name}")


@pytest.mark.parametrize("ok", [True, False])
async def test_healthz_route_is_unauthenticated_200_or_503(ok: bool) -> None:
    checks = (("engine", "ok"), ("journal", "ok" if ok else "not writable"))
    server = ApiServer(_NoControl(), lambda _s: False, "token", port=0,  # type: ignore[arg-type]
                       health=lambda: Health(ok, checks))
    await server.start()
    try:
        async with aiohttp.ClientSession() as session, session.get(f"{server.url}/healthz") as r:
            assert r.status == (200 if ok else 503)
            assert r.headers["Cache-Control"] == "no-store"
            assert await r.json() == {"status": "ok" if ok else "unhealthy", "checks": dict(checks)}
    finally:
        await server.stop()
