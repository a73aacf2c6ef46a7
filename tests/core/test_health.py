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


# ---------------------------------------------------------------- the real engine on a full disk

async def test_healthz_of_a_running_engine_follows_a_full_disk(tmp_path: Path) -> None:
    """Runtime (engine + API) with its state on a 1 MB tmpfs: 200, fill it → 503 journal, free it → 200."""
    import asyncio
    import os
    import subprocess
    import time

    from core.runtime import Runtime
    from core.sim.devices import DeviceSpec
    from core.sim.server import SimServer

    state = tmp_path / "state"
    state.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(state)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    filler = state / "filler"

    async def healthz(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, object]]:
        async with session.get(f"{url}/healthz") as r:
            return r.status, await r.json()

    async def until(session: aiohttp.ClientSession, url: str, status: int, what: str) -> dict[str, object]:
        deadline = time.monotonic() + 30
        while True:
            got, body = await healthz(session, url)
            if got == status:
                return body
            assert time.monotonic() < deadline, f"{what}: still {got} {body}"
            await asyncio.sleep(0.1)

    try:
        async with SimServer([DeviceSpec("d1", "flapping", {"period_s": 0.3})]) as sim:
            config = tmp_path / "rack.toml"
            config.write_text(f"""
[fault_detection]
check_interval_seconds = 0.1
timeout_seconds = 0.5
jitter_fraction = 0.0
[api]
listen = "127.0.0.1:0"
[[services]]
id = "d1"
endpoint = "{sim.base_url('d1')}"
""", encoding="utf-8")
            runtime = Runtime(str(config), state_dir=str(state))
            await runtime.start()
            try:
                assert runtime.api is not None
                url = runtime.api.url
                async with aiohttp.ClientSession() as session:
                    assert (await until(session, url, 200, "healthy at start"))["checks"] == {
                        "engine": "ok", "journal": "ok"}
                    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
                    try:
                        size = 65536
                        while size:
                            try:
                                os.write(fd, b"\0" * size)
                            except OSError:
                                size //= 2
                    finally:
                        os.close(fd)
                    body = await until(session, url, 503, "unhealthy once the disk is full")
                    assert body == {"status": "unhealthy", "checks": {"engine": "ok", "journal": "not writable"}}
                    filler.unlink()
                    await until(session, url, 200, "healthy again once space returns")
            finally:
                await runtime.stop()
    finally:
        if subprocess.run(["umount", str(state)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(state)], capture_output=True)
