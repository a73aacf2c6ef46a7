"""Check values in the journal: raw samples, per-minute rollups, retention, the v1 → v2 upgrade, and
the engine recording what its checks read (numbers only) and serving it as value_history."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.clock import FakeClock
from core.config import JournalConfig
from core.events import ProbeEvent, ServiceStatus
from core.journal import _MIGRATIONS, SCHEMA_VERSION, Journal, ValueRollupRow
from engine_harness import BASE, EngineHarness, service

WALL0 = 1_780_000_000.0  # FakeClock's default start_wall
MINUTE0 = 1_780_000_020.0  # a minute's start


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=0.0, start_wall=WALL0)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "faultwatch.db"


@pytest.fixture
def journal(db_path: Path, clock: FakeClock) -> Iterator[Journal]:
    j = Journal.open(db_path, JournalConfig(), clock)
    yield j
    j.close()


def test_values_are_read_back_buffered_and_flushed_oldest_first(journal: Journal) -> None:
    journal.record_value("plc", WALL0 + 2, 41.5)
    journal.record_value("plc", WALL0 + 1, 40.0)
    journal.record_value("other", WALL0 + 1, 7.0)
    assert journal.values("plc", WALL0) == [(WALL0 + 1, 40.0), (WALL0 + 2, 41.5)]  # from the buffer
    journal.flush()
    journal.record_value("plc", WALL0 + 3, 42.25)
    assert journal.values("plc", WALL0) == [(WALL0 + 1, 40.0), (WALL0 + 2, 41.5), (WALL0 + 3, 42.25)]
    assert journal.values("plc", WALL0 + 2, until_wall=WALL0 + 3) == [(WALL0 + 2, 41.5)]
    assert journal.values("other", 0) == [(WALL0 + 1, 7.0)]
    assert journal.values("nobody", 0) == []


def test_non_finite_values_are_not_stored(journal: Journal) -> None:
    journal.record_value("plc", WALL0, math.nan)
    journal.record_value("plc", WALL0 + 1, math.inf)
    journal.record_value("plc", WALL0 + 2, 3.0)
    journal.flush()
    assert journal.values("plc", 0) == [(WALL0 + 2, 3.0)]


def test_values_survive_close_and_reopen(db_path: Path, clock: FakeClock) -> None:
    with Journal.open(db_path, JournalConfig(), clock) as j:
        j.record_value("ups", WALL0 + 5, 98.0)  # never flushed by hand: close() must write it
    with Journal.open(db_path, JournalConfig(), clock) as again:
        assert again.values("ups", 0) == [(WALL0 + 5, 98.0)]
        assert [r.mean for r in again.value_rollup("ups", 0)] == [98.0]


def test_rollups_keep_min_mean_max_per_minute_across_flushes(journal: Journal) -> None:
    for offset, value in ((0, 10.0), (20, 30.0)):
        journal.record_value("plc", MINUTE0 + offset, value)
    journal.flush()
    journal.record_value("plc", MINUTE0 + 40, 20.0)  # same minute, flushed separately
    journal.flush()
    journal.record_value("plc", MINUTE0 + 50, -4.0)  # same minute, still buffered
    journal.record_value("plc", MINUTE0 + 61, 5.0)   # the next minute
    rows = journal.value_rollup("plc", MINUTE0)
    assert rows == [ValueRollupRow(minute_wall=MINUTE0, count=4, min=-4.0, mean=14.0, max=30.0),
                    ValueRollupRow(minute_wall=MINUTE0 + 60, count=1, min=5.0, mean=5.0, max=5.0)]
    journal.flush()
    assert journal.value_rollup("plc", MINUTE0) == rows  # flushed or not, the same answer
    assert journal.value_rollup("plc", MINUTE0, until_wall=MINUTE0 + 60) == rows[:1]


def test_prune_keeps_values_as_long_as_latency(journal: Journal, clock: FakeClock) -> None:
    config = journal.config
    raw_h = config.raw_retention_hours
    day = 86_400.0
    now = clock.wall()
    for wall, value in ((now - 31 * day, 1.0), (now - 29 * day, 2.0), (now - (raw_h + 1) * 3600, 3.0),
                        (now - (raw_h - 1) * 3600, 4.0)):
        journal.record_value("plc", wall, value)
    journal.flush()
    assert journal.value_counts() == (4, 4)
    journal.prune()
    assert journal.values("plc", 0) == [(now - (raw_h - 1) * 3600, 4.0)]
    assert [r.mean for r in journal.value_rollup("plc", 0)] == [2.0, 3.0, 4.0]
    assert journal.value_counts() == (1, 3)


def test_prune_bounds_value_rows_in_a_scaled_configuration(db_path: Path, clock: FakeClock) -> None:
    """Two services read every second for longer than any retention, pruned every simulated 15 min:
    raw and rollup rows never exceed what the retention allows."""
    services = 2
    config = JournalConfig(raw_retention_hours=0.1, rollup_retention_days=1 / 48, event_retention_days=1)
    raw_bound = services * (0.1 * 3600 + 1)
    rollup_bound = services * (30 + 1)
    with Journal.open(db_path, config, clock) as j:
        for _quarter in range(6):
            for _second in range(900):
                for s in range(services):
                    j.record_value(f"plc-{s}", clock.wall(), float(s))
                clock.advance_sync(1.0)
            j.flush()
            j.prune()
            raw, rollups = j.value_counts()
            assert raw <= raw_bound and rollups <= rollup_bound
        assert raw >= services * 0.1 * 3600 * 0.99
        assert rollups >= services * 30 - services


def test_a_version_1_journal_is_upgraded_and_keeps_its_events(db_path: Path, clock: FakeClock) -> None:
    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path)
    for statement in _MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with Journal.open(db_path, JournalConfig(), clock) as j:
        j.append(ProbeEvent(service="plc", mono=0.0, wall=WALL0, status=ServiceStatus.HEALTHY, latency_ms=3.0,
                            error=None, consecutive_failures=0))
        j.record_value("plc", WALL0, 12.0)
        j.flush()
        assert j.values("plc", 0) == [(WALL0, 12.0)]
    check = sqlite3.connect(db_path)
    try:
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    finally:
        check.close()


async def test_the_engine_journals_numeric_values_and_serves_them(tmp_path: Path) -> None:
    config = BASE + service("plc") + service("coil") + service("web")
    async with EngineHarness(config, tmp_path) as h:
        h.dev("plc").value = 41.5
        h.dev("coil").value = True  # a state, not a reading: not charted
        h.dev("web").value = "online"
        await h.advance(3)
        start = h.clock.wall() - 60
        raw = await h.engine.value_history("plc", start)
        assert len(raw) >= 3 and {v for _, v in raw} == {41.5}
        h.dev("plc").value = 43  # ints are numbers too
        await h.advance(1)
        assert (await h.engine.value_history("plc", start))[-1][1] == 43.0
        assert await h.engine.value_history("coil", start) == []
        assert await h.engine.value_history("web", start) == []
        [minute] = await h.engine.value_history("plc", start, rollup=True)
        assert 41.5 < minute[1] < 43.0  # the minute's mean


def test_values_wait_out_a_locked_journal_and_are_written_after(tmp_path: Path, clock: FakeClock) -> None:
    """Another process holds SQLite's write lock (a real lock, as in test_journal_disk.py): values stay
    buffered and readable, nothing raises, and the next flush after the lock is gone writes them."""
    from test_journal_disk import hold_lock, release

    path = tmp_path / "faultwatch.db"
    journal = Journal.open(path, JournalConfig(), clock, recover=True)
    try:
        journal.record_value("plc", WALL0, 1.0)
        journal.flush()
        holder = hold_lock(path)
        try:
            journal.record_value("plc", WALL0 + 1, 2.0)
            journal.flush()  # the disk fails here: degraded, not an exception
            assert not journal.health().ok
            journal.record_value("plc", WALL0 + 2, 3.0)
            assert [v for _, v in journal.values("plc", 0)] == [1.0, 2.0, 3.0]
            journal.prune()  # skipped while degraded, no exception
        finally:
            release(holder)
        clock.advance_sync(60.0)  # the retry comes due
        journal.flush()
        assert journal.health().ok
        assert journal.value_counts() == (3, 1)
    finally:
        journal.close()
    with Journal.open(path, JournalConfig(), clock) as again:
        assert [v for _, v in again.values("plc", 0)] == [1.0, 2.0, 3.0]


def test_a_full_buffer_on_a_healthy_disk_is_flushed_not_dropped(journal: Journal, clock: FakeClock,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A buffer that reaches its bound is written out; nothing is dropped or warned about."""
    monkeypatch.setattr("core.journal._MAX_BUFFERED", 200)
    base = clock.wall()
    for i in range(450):
        journal.record_latency("pump-1", base + i, 1.0 + i, True)
        journal.record_value("pump-1", base + i, float(i))
    assert journal.health().dropped_samples == 0
    journal.flush()
    assert len(journal.latency("pump-1", 0)) == 450
    assert [v for _, v in journal.values("pump-1", 0)] == [float(i) for i in range(450)]
