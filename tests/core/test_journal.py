"""The journal: numbering, persistence, queries, latency rollups, retention, state, bad files."""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import paths
from core.clock import FakeClock
from core.config import JournalConfig
from core.events import (
    ActionEvent,
    AlertEvent,
    AnomalyEvent,
    BreakerEvent,
    BreakerState,
    Event,
    HeartbeatEvent,
    ProbeEvent,
    RecoveryEvent,
    RecoveryOutcome,
    ServiceStatus,
)
from core.journal import (
    SCHEMA_VERSION,
    Journal,
    JournalCorruptError,
    JournalError,
    RollupRow,
)

WALL0 = 1_780_000_000.0  # FakeClock's default start_wall, at monotonic 0


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


def probe(service: str = "api", wall: float = WALL0, mono: float = 0.0,
          status: ServiceStatus = ServiceStatus.UNHEALTHY) -> ProbeEvent:
    return ProbeEvent(service=service, mono=mono, wall=wall, status=status, latency_ms=None,
                      error="connection refused", consecutive_failures=3, endpoint="http://x/health")


def every_kind() -> list[Event]:
    common = {"mono": 12.5, "wall": WALL0 + 1.25}
    return [
        ProbeEvent(service="api", **common, status=ServiceStatus.DEGRADED, latency_ms=1234.5,
                   error=None, consecutive_failures=0, endpoint="http://api/health"),
        BreakerEvent(service="api", **common, from_state=BreakerState.CLOSED,
                     to_state=BreakerState.FORCED_OPEN, reason="operator"),
        RecoveryEvent(service="db", **common, recovery_id="db-1-abc", strategy="restart", attempt=2,
                      max_attempts=3, outcome=RecoveryOutcome.FAILED, delay_s=4.0,
                      failure_type="service_unavailable", detail="HTTP 500 ünïcode"),
        HeartbeatEvent(service="sensor-7", **common, status="missed", last_beat_age_s=91.5),
        HeartbeatEvent(service="sensor-8", **common, status="resumed"),
        AnomalyEvent(service="api", **common, latency_ms=900.0, baseline_ms=120.25, score=7.5,
                     detector="ewma"),
        AlertEvent(service="api", **common, alert_id="a-1", severity="critical", rule="down",
                   state="firing", message="api is down", group="edge"),
        ActionEvent(service="", **common, command="pause", origin="gui", ok=False, detail="no such service"),
    ]


# ---------------------------------------------------------------- events

def test_append_assigns_increasing_seq_and_commits(journal: Journal, db_path: Path) -> None:
    stored = [journal.append(probe(wall=WALL0 + i)) for i in range(5)]
    assert [e.seq for e in stored] == [1, 2, 3, 4, 5]
    assert journal.last_seq() == 5
    assert stored[2] == dataclasses.replace(probe(wall=WALL0 + 2), seq=3)
    # Committed: another connection sees every row before the journal is closed.
    other = sqlite3.connect(db_path)
    try:
        assert other.execute("SELECT count(*) FROM events").fetchone()[0] == 5
    finally:
        other.close()


def test_append_many_is_one_batch_with_consecutive_seqs(journal: Journal) -> None:
    journal.append(probe())
    stored = journal.append_many([probe("a"), probe("b"), probe("c")])
    assert [e.seq for e in stored] == [2, 3, 4]
    assert journal.append_many([]) == []
    assert journal.last_seq() == 4


def test_seq_continues_across_close_and_reopen(db_path: Path, clock: FakeClock) -> None:
    with Journal.open(db_path, JournalConfig(), clock) as j:
        j.append(probe())
        j.append(probe())
    with Journal.open(db_path, JournalConfig(), clock) as j:
        assert j.last_seq() == 2
        assert j.append(probe()).seq == 3
        assert [e.seq for e in j.events()] == [1, 2, 3]


def test_seq_never_reused_after_every_event_is_pruned(db_path: Path, clock: FakeClock) -> None:
    config = JournalConfig(event_retention_days=1.0)
    with Journal.open(db_path, config, clock) as j:
        j.append(probe(wall=clock.wall()))
        j.append(probe(wall=clock.wall()))
        clock.advance_sync(2 * 86_400)
        j.prune()
        assert j.events() == []
    with Journal.open(db_path, config, clock) as j:
        assert j.last_seq() == 2
        assert j.append(probe(wall=clock.wall())).seq == 3


def test_every_kind_round_trips(journal: Journal, db_path: Path, clock: FakeClock) -> None:
    originals = every_kind()
    journal.append_many(originals)
    journal.close()
    with Journal.open(db_path, JournalConfig(), clock) as j:
        back = j.events()
    assert len(back) == len(originals)
    for original, restored in zip(originals, back):
        assert type(restored) is type(original)
        assert dataclasses.replace(restored, seq=0) == original
        assert restored.seq > 0


def test_events_filters(journal: Journal) -> None:
    journal.append(probe("api", wall=WALL0 + 0))                                     # 1
    journal.append(probe("db", wall=WALL0 + 10))                                     # 2
    journal.append(BreakerEvent(service="api", mono=0, wall=WALL0 + 20,              # 3
                                from_state=BreakerState.CLOSED, to_state=BreakerState.OPEN, reason="x"))
    journal.append(ActionEvent(service="", mono=0, wall=WALL0 + 30, command="pause_all", origin="api"))  # 4
    journal.append(probe("api", wall=WALL0 + 40))                                    # 5

    def seqs(**kw: object) -> list[int]:
        return [e.seq for e in journal.events(**kw)]  # type: ignore[arg-type]

    assert seqs() == [1, 2, 3, 4, 5]
    assert seqs(service="api") == [1, 3, 5]
    assert seqs(service="") == [4]
    assert seqs(kinds=["breaker", "action"]) == [3, 4]
    assert seqs(kinds=[]) == []
    assert seqs(since_seq=3) == [4, 5]  # exclusive: "after the last one I saw"
    assert seqs(since_wall=WALL0 + 20) == [3, 4, 5]  # inclusive
    assert seqs(limit=2) == [1, 2]
    assert seqs(limit=None) == [1, 2, 3, 4, 5]
    assert seqs(newest_first=True) == [5, 4, 3, 2, 1]
    assert seqs(newest_first=True, limit=2) == [5, 4]
    assert seqs(service="api", kinds=["probe"], since_seq=1, since_wall=WALL0 + 30) == [5]


def test_events_restore_mono_and_wall(journal: Journal) -> None:
    journal.append(probe(wall=WALL0 + 0.123456, mono=98.765432))
    (event,) = journal.events()
    assert event.wall == WALL0 + 0.123456
    assert event.mono == 98.765432


def test_payloads_are_not_logged_at_info(db_path: Path, clock: FakeClock,
                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="core.journal")
    secret = "token=hunter2"
    with Journal.open(db_path, JournalConfig(), clock) as j:
        j.append(ActionEvent(service="api", mono=0, wall=WALL0, command="restart", origin="api",
                             detail=secret))
        j.events()
        j.prune()
    assert secret not in caplog.text


# ---------------------------------------------------------------- latency

def test_latency_includes_unflushed_samples(journal: Journal) -> None:
    journal.record_latency("api", WALL0 + 1, 10.0, True)
    journal.record_latency("api", WALL0 + 2, None, False)
    journal.record_latency("db", WALL0 + 2, 5.0, True)
    assert journal.latency("api", WALL0) == [(WALL0 + 1, 10.0), (WALL0 + 2, None)]
    assert journal.flush() == 3
    assert journal.flush() == 0
    journal.record_latency("api", WALL0 + 3, 30.5, True)
    assert journal.latency("api", WALL0) == [(WALL0 + 1, 10.0), (WALL0 + 2, None), (WALL0 + 3, 30.5)]
    # since inclusive, until exclusive, for stored and buffered samples alike
    assert journal.latency("api", WALL0 + 2, WALL0 + 3) == [(WALL0 + 2, None)]
    assert journal.latency("api", WALL0 + 3, WALL0 + 4) == [(WALL0 + 3, 30.5)]
    assert journal.latency("nobody", WALL0) == []


def test_latency_resolution_is_ms_wall_and_us_latency(journal: Journal) -> None:
    journal.record_latency("api", WALL0 + 0.0004, 1.2345678, True)
    journal.flush()
    assert journal.latency("api", WALL0 - 1) == [(WALL0, 1.235)]


def test_flush_writes_rollups_per_minute(journal: Journal, db_path: Path, clock: FakeClock) -> None:
    m0 = WALL0 - WALL0 % 60  # a minute boundary
    samples = [
        (m0 + 1, 10.0, True), (m0 + 20, 30.0, True), (m0 + 40, None, False), (m0 + 59.9, 50.0, False),
        (m0 + 60, 7.0, True),
        (m0 + 180, None, False),  # a minute with no timed sample
    ]
    for wall, ms, ok in samples[:3]:
        journal.record_latency("api", wall, ms, ok)
    journal.record_latency("db", m0 + 5, 999.0, True)
    assert journal.flush() == 4
    # The second flush lands in a minute that already has a row: the UPSERT must merge.
    for wall, ms, ok in samples[3:]:
        journal.record_latency("api", wall, ms, ok)
    assert journal.flush() == 3
    expected = [
        RollupRow(minute_wall=m0, count=4, failures=2, min_ms=10.0, mean_ms=30.0, max_ms=50.0),
        RollupRow(minute_wall=m0 + 60, count=1, failures=0, min_ms=7.0, mean_ms=7.0, max_ms=7.0),
        RollupRow(minute_wall=m0 + 180, count=1, failures=1, min_ms=None, mean_ms=None, max_ms=None),
    ]
    assert journal.latency_rollup("api", m0) == expected
    assert journal.latency_rollup("api", m0 + 30, m0 + 120) == expected[:2]  # minute of since_wall counts
    assert journal.latency_rollup("db", m0) == [
        RollupRow(minute_wall=m0, count=1, failures=0, min_ms=999.0, mean_ms=999.0, max_ms=999.0)]
    journal.close()
    with Journal.open(db_path, JournalConfig(), clock) as j:
        assert j.latency_rollup("api", m0) == expected


def test_rollup_merges_an_untimed_minute_with_later_timed_samples(journal: Journal) -> None:
    m0 = WALL0 - WALL0 % 60
    journal.record_latency("api", m0 + 1, None, False)
    journal.flush()
    journal.record_latency("api", m0 + 2, 8.0, True)
    journal.record_latency("api", m0 + 3, 4.0, True)
    # Unflushed samples are merged into the stored minute on read, too.
    expected = [RollupRow(minute_wall=m0, count=3, failures=1, min_ms=4.0, mean_ms=6.0, max_ms=8.0)]
    assert journal.latency_rollup("api", m0) == expected
    journal.flush()
    assert journal.latency_rollup("api", m0) == expected


def test_close_flushes_the_buffer(db_path: Path, clock: FakeClock) -> None:
    j = Journal.open(db_path, JournalConfig(), clock)
    j.record_latency("api", WALL0, 3.0, True)
    j.close()
    j.close()  # idempotent
    with pytest.raises(JournalError, match="closed"):
        j.events()
    with Journal.open(db_path, JournalConfig(), clock) as again:
        assert again.latency("api", WALL0 - 1) == [(WALL0, 3.0)]
        assert again.stats().samples == 1


# ---------------------------------------------------------------- retention

def test_prune_drops_old_rows_and_keeps_new(journal: Journal, clock: FakeClock) -> None:
    config = journal.config  # defaults: 6 h raw, 30 d rollups, 90 d events
    raw_h = config.raw_retention_hours
    day = 86_400.0
    now = clock.wall()
    journal.append(probe(wall=now - 91 * day))
    journal.append(probe(wall=now - 89 * day))
    journal.record_latency("api", now - 31 * day, 1.0, True)
    journal.record_latency("api", now - 29 * day, 2.0, True)
    journal.record_latency("api", now - (raw_h + 1) * 3600, 3.0, True)
    journal.record_latency("api", now - (raw_h - 1) * 3600, 4.0, True)
    journal.flush()
    journal.prune()
    assert config.event_retention_days == 90
    assert [e.wall for e in journal.events()] == [now - 89 * day]
    assert journal.latency("api", 0) == [(now - (raw_h - 1) * 3600, 4.0)]
    minutes = [r.minute_wall for r in journal.latency_rollup("api", 0)]
    assert len(minutes) == 3 and min(minutes) >= now - 30 * day - 60
    assert journal.last_seq() == 2


def test_prune_bounds_row_counts_in_a_scaled_configuration(db_path: Path, clock: FakeClock) -> None:
    """The space estimate's math, scaled down: S services sampled every second for longer than any
    retention, pruned every simulated hour; row counts never exceed what retention allows."""
    services = 3
    raw_hours = 0.25          # 900 samples per service
    rollup_days = 1 / 24      # 60 minutes per service
    config = JournalConfig(raw_retention_hours=raw_hours, rollup_retention_days=rollup_days,
                           event_retention_days=1 / 48)
    raw_bound = services * (raw_hours * 3600 + 1)
    rollup_bound = services * (rollup_days * 1440 + 1)
    event_bound = 30 * 60 + 1  # one event a second: 30 minutes
    with Journal.open(db_path, config, clock) as j:
        for hour in range(4):
            for second in range(3600):
                wall = clock.wall()
                for s in range(services):
                    j.record_latency(f"svc-{s}", wall, 1.0 + s, True)
                if second % 10 == 0:
                    j.append(probe(wall=wall))
                clock.advance_sync(1.0)
            j.flush()
            j.prune()
            stats = j.stats()
            assert stats.samples <= raw_bound
            assert stats.rollups <= rollup_bound
            assert stats.events <= event_bound
        assert stats.samples >= services * raw_hours * 3600 * 0.99
        assert stats.rollups >= services * rollup_days * 1440 - services
        assert stats.events > 0


# ---------------------------------------------------------------- state

def test_state_save_load_items(db_path: Path, clock: FakeClock) -> None:
    with Journal.open(db_path, JournalConfig(), clock) as j:
        assert j.load_state("breaker.forced.api") is None
        assert j.load_state("missing", default={"x": 1}) == {"x": 1}
        j.save_state("breaker.forced.api", "forced_open")
        j.save_state("breaker.forced.db", {"state": "forced_closed", "by": "gui"})
        j.save_state("paused.sensor-1", True)
        j.save_state("breaker.forced.api", "forced_closed")  # overwrite
        j.save_state("breaker_forced", 1)  # must not match the prefix below
        with pytest.raises(JournalError, match="JSON"):
            j.save_state("bad", object())
    with Journal.open(db_path, JournalConfig(), clock) as j:
        assert j.load_state("breaker.forced.api") == "forced_closed"
        assert j.state_items("breaker.forced.") == {
            "breaker.forced.api": "forced_closed",
            "breaker.forced.db": {"state": "forced_closed", "by": "gui"},
        }
        assert j.state_items("paused.") == {"paused.sensor-1": True}
        assert j.state_items("100%_") == {}
        j.delete_state("paused.sensor-1")
        j.delete_state("never-there")
        assert j.state_items("paused.") == {}


# ---------------------------------------------------------------- the file itself

def test_wal_mode_is_on_and_schema_versioned(journal: Journal, db_path: Path) -> None:
    journal.append(probe())
    other = sqlite3.connect(db_path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert other.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        other.close()
    assert (db_path.stat().st_mode & 0o777) == 0o600


def test_corrupt_file_raises_one_line_error(db_path: Path, clock: FakeClock) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is not a database\n" * 200)
    with pytest.raises(JournalCorruptError) as info:
        Journal.open(db_path, JournalConfig(), clock)
    message = str(info.value)
    assert "\n" not in message
    assert str(db_path) in message and "recover" in message
    assert isinstance(info.value, JournalError)
    assert db_path.read_bytes().startswith(b"this is not")  # left alone without recover


def test_recover_moves_the_bad_file_aside(db_path: Path, clock: FakeClock,
                                          caplog: pytest.LogCaptureFixture) -> None:
    db_path.parent.mkdir(parents=True)
    garbage = b"\x00garbage\xff" * 1000
    db_path.write_bytes(garbage)
    Path(f"{db_path}-wal").write_bytes(b"stale wal")
    with caplog.at_level(logging.WARNING, logger="core.journal"):
        with Journal.open(db_path, JournalConfig(), clock, recover=True) as j:
            assert j.append(probe()).seq == 1
    moved = [p for p in db_path.parent.iterdir() if ".corrupt-" in p.name]
    main = [p for p in moved if not p.name.endswith(("-wal", "-shm"))]
    assert len(main) == 1 and main[0].read_bytes() == garbage
    assert main[0].name.startswith("faultwatch.db.corrupt-")
    # The stale WAL never reaches the new journal (SQLite drops an invalid one when the failed
    # connection closes; a surviving one is moved along with the file).
    assert not Path(f"{db_path}-wal").exists() or Path(f"{db_path}-wal").read_bytes() != b"stale wal"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert str(main[0]) in warnings[0] and "started a new journal" in warnings[0]


def test_foreign_sqlite_file_is_not_adopted(db_path: Path, clock: FakeClock) -> None:
    db_path.parent.mkdir(parents=True)
    other = sqlite3.connect(db_path)
    other.execute("CREATE TABLE mine (x)")
    other.commit()
    other.close()
    with pytest.raises(JournalCorruptError, match="not a Faultwatch journal"):
        Journal.open(db_path, JournalConfig(), clock)


def test_newer_schema_is_refused_not_moved(db_path: Path, clock: FakeClock) -> None:
    Journal.open(db_path, JournalConfig(), clock).close()
    other = sqlite3.connect(db_path)
    other.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    other.close()
    with pytest.raises(JournalError, match="newer") as info:
        Journal.open(db_path, JournalConfig(), clock, recover=True)
    assert not isinstance(info.value, JournalCorruptError)
    assert db_path.exists()


def test_stats(journal: Journal) -> None:
    journal.append(probe())
    journal.record_latency("api", WALL0, 1.0, True)
    stats = journal.stats()
    assert (stats.events, stats.samples, stats.buffered, stats.last_seq) == (1, 0, 1, 1)
    journal.flush()
    stats = journal.stats()
    assert (stats.samples, stats.rollups, stats.buffered) == (1, 1, 0)
    assert stats.file_bytes > 0


# ---------------------------------------------------------------- paths

def test_state_dir_from_env_is_created_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "s" / "state"
    monkeypatch.setenv(paths.STATE_DIR_ENV, str(target))
    assert paths.state_dir() == target
    assert target.is_dir() and (target.stat().st_mode & 0o777) == 0o700
    assert paths.state_dir(str(tmp_path / "cli")) == tmp_path / "cli"
    assert paths.journal_path() == target / "faultwatch.db"
    assert paths.journal_path("/x/j.db") == Path("/x/j.db")


def test_config_paths_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(paths.CONFIG_FILE_ENV, raising=False)
    monkeypatch.setenv(paths.CONFIG_DIR_ENV, str(tmp_path / "cfg"))
    assert paths.config_dir() == tmp_path / "cfg"
    assert paths.default_config_path() == tmp_path / "cfg" / "faultwatch.toml"
    monkeypatch.setenv(paths.CONFIG_FILE_ENV, str(tmp_path / "other.toml"))
    assert paths.default_config_path() == tmp_path / "other.toml"


def test_resource_path_source_and_frozen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = Path(paths.__file__).resolve().parent.parent
    assert paths.resource_path("icons", "app.png") == repo / "resources" / "icons" / "app.png"
    monkeypatch.setattr("sys.frozen", True, raising=False)
    monkeypatch.setattr("sys._MEIPASS", str(tmp_path), raising=False)
    assert paths.resource_path("a.txt") == tmp_path / "resources" / "a.txt"
