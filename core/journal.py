"""The journal: the durable record of what happened (events) and how fast things were (latency).

Owns one SQLite file. Events are numbered here (`seq`) and committed before anyone else sees them,
so after a crash everything any listener, stream or API client was ever shown is still on disk.
Latency samples are buffered and written in batches, with per-minute rollups kept alongside so long
ranges are charted from 1,440 points a day instead of 86,400 per service. A small key/value table
keeps operator decisions (forced breaker states, maintenance, paused services, storm-guard trips)
across restarts.

A disk that misbehaves does not stop the console. Opened with `recover=True` (as the engine does),
the journal meets a full disk, a read-only or vanished state directory, a file locked by another
process or a failing device by going *degraded* instead of raising: events are still numbered (from
the last seq it knew) and returned for delivery, operator decisions and samples are held in memory
(bounded), reads answer from what is readable plus what is held, and `flush()` retries the disk on
a backoff schedule (core/journal_guard.py) and writes everything held, in order, once it can.
`health()` says which; `set_health_listener()` reports each change (the engine turns it into an
alert). An unreadable file found at open is moved aside, never deleted, and a new journal started.
Rows committed before the trouble are never touched. docs/journal.md tells the operator's side.

Used from one thread at a time (the engine's loop thread); every call is synchronous and short.

Storage, and why it stays bounded (1,000 services; sizes measured on this machine, page overhead
included):

* Raw samples: wall time in integer milliseconds and latency in integer microseconds (smaller than
  REAL doubles), in a WITHOUT ROWID table keyed by (service, time): one B-tree instead of a table
  plus an index, about 20 bytes per sample (41 with a rowid table and an index). Each check is
  one sample, so the rate is services / check interval:
  at 1 s: 1,000/s × 3,600 × 6 h (`raw_retention_hours`, default 6) = 21.6 M rows ≈ 0.44 GB
  (48 h would be 3.5 GB); at the default 30 s: 0.72 M rows ≈ 14 MB. Charts older than the raw
  window use rollups.
* Per-minute rollups: one row per service and minute that had samples, about 30 bytes.
  1,000 × 1,440 × 30 days (`rollup_retention_days`) = 43.2 M rows ≈ 1.3 GB, whatever the check
  interval (any interval ≤ 60 s fills every minute). This is the largest table at default settings;
  it is kept as designed (per-minute for 30 days) and `prune()` bounds it.
* Events: state changes only, about 300 bytes each; a calm fleet writes hundreds a day (kilobytes),
  and even a sustained 10,000 a day × 90 days (`event_retention_days`) is ≈ 0.27 GB.

So 1,000 services over 30 days at default settings: ≈ 1.3 GB rollups + 14 MB raw + events,
≈ 1.4 GB; checking every second instead adds ≈ 0.43 GB of raw samples at the default 6 h.
`prune()` deletes rows past each retention and SQLite reuses the freed pages, so the file settles
at these sizes instead of growing; tests/core/test_journal.py checks with a scaled-down
configuration that prune() bounds every table's row count.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.clock import Clock
from core.config import JournalConfig
from core.events import Event, event_from_record
from core.journal_guard import (
    CANNOT_OPEN,
    CORRUPT,
    DISK_FULL,
    LOCKED,
    UNAVAILABLE,
    JournalHealth,
    RetrySchedule,
    describe,
)
from core.logs import JOURNAL as log


SCHEMA_VERSION = 2

# Each entry upgrades the schema by one version (index 0: empty file → v1). Append, never edit: a
# journal written by an older Faultwatch is walked forward step by step inside one transaction.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        # AUTOINCREMENT keeps the high-water mark in sqlite_sequence, so seq never goes back even
        # when prune() has deleted every event (plain rowids would restart at max(seq) + 1).
        "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,"
        " service TEXT NOT NULL, wall REAL NOT NULL, mono REAL NOT NULL, record TEXT NOT NULL)",
        "CREATE INDEX events_service_seq ON events(service, seq)",
        "CREATE INDEX events_wall ON events(wall)",
        # Samples and rollups refer to services by a small integer: a 1–2 byte varint instead of
        # the id text in every one of ~200 M rows.
        "CREATE TABLE services (sid INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
        "CREATE TABLE samples (sid INTEGER NOT NULL, wall_ms INTEGER NOT NULL,"
        " latency_us INTEGER, ok INTEGER NOT NULL, PRIMARY KEY (sid, wall_ms)) WITHOUT ROWID",
        # Half the size of a rowid table plus a (sid, wall_ms) index. The price: two samples of
        # one service in the same millisecond keep only the later raw row (INSERT OR REPLACE);
        # the rollup still counts both.
        # `timed` counts samples that had a latency (a refused connection has none), so the mean
        # is sum / timed, not sum / count.
        "CREATE TABLE rollups (sid INTEGER NOT NULL, minute INTEGER NOT NULL, count INTEGER NOT NULL,"
        " failures INTEGER NOT NULL, timed INTEGER NOT NULL, min_us INTEGER, max_us INTEGER,"
        " sum_us INTEGER NOT NULL, PRIMARY KEY (sid, minute)) WITHOUT ROWID",
        "CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    ),
    (
        # v2: what checks read (a register, an OID, days left), numeric values only, stored and
        # rolled up like latency (see "Values" in the Journal class).
        "CREATE TABLE value_samples (sid INTEGER NOT NULL, wall_ms INTEGER NOT NULL, value REAL NOT NULL,"
        " PRIMARY KEY (sid, wall_ms)) WITHOUT ROWID",
        "CREATE TABLE value_rollups (sid INTEGER NOT NULL, minute INTEGER NOT NULL, count INTEGER NOT NULL,"
        " min REAL NOT NULL, max REAL NOT NULL, sum REAL NOT NULL, PRIMARY KEY (sid, minute)) WITHOUT ROWID",
    ),
)
assert len(_MIGRATIONS) == SCHEMA_VERSION

# How long a write waits for another process's lock before the journal degrades. It blocks the
# engine's loop while it waits, so short: our own readers never hold the write lock (WAL), only a
# foreign writer does, and that one is better reported than waited out.
_BUSY_TIMEOUT_MS = 1000
# After a checkpoint the WAL is cut back to this size; without it one big prune() leaves a WAL file
# as large as everything it deleted, for good.
_WAL_SIZE_LIMIT = 64 * 1024 * 1024
# If nobody flushes (or flushing keeps failing, e.g. a full disk), memory must still be bounded.
_MAX_BUFFERED = 50_000
# Events held in memory while the journal cannot write (about 300 bytes each: ≈ 6 MB). Beyond
# this the oldest are dropped from the record (they were delivered already).
_MAX_PENDING_EVENTS = 20_000
# Held events written back per retry: one transaction, one stall of the engine's loop (under 0.1 s
# on a busy box, docs/benchmarks.md); the rest follow on the next flushes, one chunk per tick.
_WRITE_BACK_CHUNK = 2_000
_MINUTE_MS = 60_000
# sqlite3 result codes (the Python module exposes them only as attributes of exceptions).
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26

_UPSERT_ROLLUP = (
    "INSERT INTO rollups (sid, minute, count, failures, timed, min_us, max_us, sum_us)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (sid, minute) DO UPDATE SET"
    " count = count + excluded.count,"
    " failures = failures + excluded.failures,"
    " timed = timed + excluded.timed,"
    # SQLite's two-argument min()/max() return NULL if either side is NULL; a minute whose earlier
    # samples were all untimed must still take the new minimum.
    " min_us = min(coalesce(min_us, excluded.min_us), coalesce(excluded.min_us, min_us)),"
    " max_us = max(coalesce(max_us, excluded.max_us), coalesce(excluded.max_us, max_us)),"
    " sum_us = sum_us + excluded.sum_us"
)


class JournalError(Exception):
    """The journal cannot be opened, read or written; the message is one line."""


class JournalCorruptError(JournalError):
    """The file is not a readable Faultwatch journal; `Journal.open(..., recover=True)` moves it aside."""


@dataclass(frozen=True, slots=True)
class RollupRow:
    """One service's latency over one minute.

    Attributes:
        minute_wall: wall time of the minute's start (a multiple of 60).
        count: samples in the minute.
        failures: samples that were not ok.
        min_ms, mean_ms, max_ms: over the samples that had a latency; None if none had one.
    """

    minute_wall: float
    count: int
    failures: int
    min_ms: float | None
    mean_ms: float | None
    max_ms: float | None


@dataclass(frozen=True, slots=True)
class JournalStats:
    """Sizes for the status bar and diagnostics; counting is O(rows), so ask occasionally."""

    events: int
    samples: int
    rollups: int
    buffered: int
    file_bytes: int
    last_seq: int


# A buffered sample, already in its stored units: (service, wall_ms, latency_us, ok).
_Sample = tuple[str, int, int | None, bool]


class _Bucket:
    """Running aggregate of one (service, minute) while a flush or a read is being assembled."""

    __slots__ = ("count", "failures", "timed", "min_us", "max_us", "sum_us")

    def __init__(self) -> None:
        self.count = 0
        self.failures = 0
        self.timed = 0
        self.min_us: int | None = None
        self.max_us: int | None = None
        self.sum_us = 0

    def add(self, latency_us: int | None, ok: bool) -> None:
        self.count += 1
        if not ok:
            self.failures += 1
        if latency_us is not None:
            self.timed += 1
            self.sum_us += latency_us
            self.min_us = latency_us if self.min_us is None else min(self.min_us, latency_us)
            self.max_us = latency_us if self.max_us is None else max(self.max_us, latency_us)

    def merge(self, count: int, failures: int, timed: int, min_us: int | None, max_us: int | None,
              sum_us: int) -> None:
        self.count += count
        self.failures += failures
        self.timed += timed
        self.sum_us += sum_us
        if min_us is not None:
            self.min_us = min_us if self.min_us is None else min(self.min_us, min_us)
        if max_us is not None:
            self.max_us = max_us if self.max_us is None else max(self.max_us, max_us)

    def row(self, minute: int) -> RollupRow:
        return RollupRow(
            minute_wall=minute * 60.0,
            count=self.count,
            failures=self.failures,
            min_ms=None if self.min_us is None else self.min_us / 1000.0,
            mean_ms=self.sum_us / self.timed / 1000.0 if self.timed else None,
            max_ms=None if self.max_us is None else self.max_us / 1000.0,
        )


@dataclass(frozen=True, slots=True)
class ValueRollupRow:
    """One service's check values over one minute (numeric values only).

    Attributes:
        minute_wall: wall time of the minute's start (a multiple of 60).
        count: values in the minute.
        min, mean, max: over those values.
    """

    minute_wall: float
    count: int
    min: float
    mean: float
    max: float


class _ValueBucket:
    """Running min/max/sum of one (service, minute)'s values."""

    __slots__ = ("count", "lo", "hi", "total")

    def __init__(self) -> None:
        self.count = 0
        self.lo = math.inf
        self.hi = -math.inf
        self.total = 0.0

    def add(self, v: float) -> None:
        self.count += 1
        self.total += v
        self.lo = min(self.lo, v)
        self.hi = max(self.hi, v)

    def merge(self, count: int, lo: float, hi: float, total: float) -> None:
        self.count += count
        self.total += total
        self.lo = min(self.lo, lo)
        self.hi = max(self.hi, hi)

    def row(self, minute: int) -> ValueRollupRow:
        return ValueRollupRow(minute_wall=minute * 60.0, count=self.count, min=self.lo,
                              mean=self.total / self.count, max=self.hi)


def _to_ms(wall: float) -> int:
    return round(wall * 1000.0)


def _to_us(latency_ms: float | None) -> int | None:
    if latency_ms is None or not math.isfinite(latency_ms):
        return None
    return round(latency_ms * 1000.0)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class Journal:
    """Events, latency history and restored state in one SQLite file (WAL mode).

    Attributes:
        path: the journal file.
        config: retention settings.
    """

    def __init__(self, path: Path, config: JournalConfig, clock: Clock, *, degrade: bool = False,
                 _unusable: str | None = None) -> None:
        """Open (creating if needed) the journal at `path`; raises JournalError (one line).

        A journal left behind by a killed process opens normally: SQLite replays its WAL. With
        `degrade`, a file that cannot be opened for writing (read-only or full disk, missing
        permission, a lock held elsewhere) gives a degraded journal instead of an error; a corrupt
        file or a newer schema still raises.
        """
        self.path = Path(path)
        self.config = config
        self._clock = clock
        self._buffer: list[_Sample] = []
        self._value_buffer: list[tuple[str, int, float]] = []
        self._sids: dict[str, int] = {}
        self._closed = False
        # Degraded state: what was accepted but is not on disk yet, and why.
        self._pending: list[tuple[Event, str]] = []  # numbered events and their stored record
        self._pending_state: dict[str, str | None] = {}  # key → JSON text, None: delete
        self._condition = ""
        self._reason = ""
        self._since_wall: float | None = None
        self._dropped_events = 0
        self._dropped_samples = 0
        self._retry = RetrySchedule()
        self._conn_readonly = False
        self._draining = False  # the disk took the last write-back chunk; more are held
        self._moved_aside: str | None = None
        self._listener: Callable[[JournalHealth], None] | None = None
        self._conn: sqlite3.Connection | None = None
        self._last_seq = 0
        if _unusable is not None:
            # open(): the file is corrupt and could not be moved aside; do not touch it again here.
            self._degrade(CORRUPT, _unusable)
            return
        try:
            self._conn = self._connect()
            self._last_seq = self._read_last_seq()
        except _Unavailable as exc:
            if not degrade:
                raise JournalError(str(exc)) from None
            self._open_readonly()
            self._degrade(exc.condition, exc.reason)
            return
        log.info("journal %s open (schema v%d, last seq %d)", self.path, SCHEMA_VERSION, self._last_seq)

    @classmethod
    def open(cls, path: Path, config: JournalConfig, clock: Clock, *, recover: bool = False) -> Journal:
        """Open the journal; with `recover`, never fail on the disk's account.

        A corrupt or foreign file is moved aside and a fresh one started: renamed, never deleted,
        to `<name>.corrupt-<UTC time>` next to it (faultwatch.db.corrupt-20261130T204500Z), together
        with its -wal/-shm companions, so it can still be inspected or salvaged. A file that cannot
        be written (full or read-only disk, permissions, a lock held by another process) gives a
        degraded journal that keeps numbering events in memory and writes them once it can.
        Only a journal of a newer schema is refused (that needs a newer Faultwatch, not a retry).
        """
        try:
            return cls(path, config, clock, degrade=recover)
        except JournalCorruptError as exc:
            if not recover:
                raise
            try:
                moved = _move_aside(Path(path), clock.wall())
            except JournalError as move_exc:
                # Cannot even rename (read-only directory): run degraded and try again later;
                # the retry meets the same file and keeps failing until someone looks.
                return cls(path, config, clock, degrade=True, _unusable=str(move_exc))
            salvage = _salvage(moved)
            # One line an operator can act on: what was wrong, where the old file is now.
            why = str(exc).split("; open it with recover")[0]
            log.warning("journal unreadable at start (%s); kept it as %s and started a new journal%s",
                        why, moved, salvage.summary())
            journal = cls(path, config, clock, degrade=True)
            journal._moved_aside = str(moved)
            journal._adopt(salvage)
            return journal

    def _adopt(self, salvage: _Salvage) -> None:
        """Carry what could be read from a replaced file into this new one: events, saved state, and
        the seq high-water mark, so numbering goes on instead of starting over at 1."""
        if salvage.empty:
            return
        if self._condition:
            # Not writable either: keep numbering and the operator's decisions in memory.
            self._last_seq = max(self._last_seq, salvage.high_water)
            for key, text in salvage.state:
                self._pending_state.setdefault(key, text)
            return
        try:
            with self._write() as conn:
                conn.executemany("INSERT OR IGNORE INTO events (seq, kind, service, wall, mono, record)"
                                 " VALUES (?, ?, ?, ?, ?, ?)", salvage.events)
                for key, text in salvage.state:
                    _write_state(conn, key, text)
                high = max(salvage.high_water, _high_water(conn))
                # AUTOINCREMENT's high-water mark lives in sqlite_sequence: raise it so the next
                # append continues after every seq the old file ever handed out.
                if conn.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'events'", (high,)).rowcount == 0:
                    conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('events', ?)", (high,))
        except _WriteFailed as exc:
            self._degrade(exc.condition, exc.reason)
            self._adopt(salvage)
            return
        self._last_seq = max(self._last_seq, high)

    # ------------------------------------------------------------ opening

    def _connect(self) -> sqlite3.Connection:
        """A read-write connection with the schema in place; raises _Unavailable or JournalError."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                # Created 0600 before SQLite sees it: SQLite gives the -wal and -shm files the main
                # file's mode, and the journal may hold whatever services put in their errors.
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            raise _Unavailable(exc, self.path, "cannot create journal") from None
        try:
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE … COMMIT) so append()
            # knows exactly when its row is durable. check_same_thread=False: the engine may open the
            # journal before its loop thread starts; use stays serialized on one thread at a time.
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=_BUSY_TIMEOUT_MS / 1000.0)
        except sqlite3.Error as exc:
            raise _Unavailable(exc, self.path, "cannot open journal") from None
        try:
            self._setup(conn)
        except sqlite3.DatabaseError as exc:
            conn.close()
            code = getattr(exc, "sqlite_errorcode", None)
            if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
                raise JournalCorruptError(
                    f"{self.path}: not a readable journal ({_one_line(exc)}); "
                    "open it with recover to move it aside and start a new one") from None
            raise _Unavailable(exc, self.path, "cannot open journal") from None
        except JournalError:
            conn.close()
            raise
        return conn

    def _open_readonly(self) -> None:
        """While the file cannot be written, read what it holds: the last seq and saved state.

        Numbering then continues where the file left off, and a restart on a read-only disk still
        restores forced breakers and maintenance windows.
        """
        if not self.path.exists():
            return
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        conn = _try_read(uri)
        if conn is None:
            # A WAL journal needs its -shm file even to be read, and a read-only mount or directory
            # cannot make one. Immutable skips it: exact on a read-only mount (nobody can change
            # the file), a best effort elsewhere (a WAL left by a crash is not seen, and seqs held
            # now may turn out taken; the write-back moves them up, see _write_held).
            conn = _try_read(uri + "&immutable=1")
        if conn is None:
            log.info("journal %s: not readable either; numbering continues from seq %d",
                     self.path, self._last_seq)
            return
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version != SCHEMA_VERSION:
                conn.close()
                return
            self._last_seq = _high_water(conn)
        except sqlite3.Error as exc:
            conn.close()
            log.info("journal %s: not readable either (%s)", self.path, _one_line(exc))
            return
        self._conn = conn
        self._conn_readonly = True

    def _setup(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            # Some network filesystems cannot do WAL's shared memory; the journal still works, only
            # with slower commits, so this is worth a warning but not a refusal.
            log.warning("journal %s: WAL mode unavailable (journal_mode=%s)", self.path, mode)
        # NORMAL, not FULL: in WAL mode a commit is written to the WAL before append() returns, so a
        # *process* crash (the failure we guard against) loses nothing; only a power cut or OS crash
        # can lose the last commits, and FULL would pay an fsync per event to cover that.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA journal_size_limit = {_WAL_SIZE_LIMIT}")
        self._migrate(conn)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise JournalError(
                f"{self.path}: journal schema v{version} is newer than this Faultwatch supports "
                f"(v{SCHEMA_VERSION}); upgrade Faultwatch or point [journal] path elsewhere")
        if version == SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            if version == 0:
                tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
                if tables:
                    # Never add our tables to somebody else's database.
                    raise JournalCorruptError(
                        f"{self.path}: an SQLite file but not a Faultwatch journal; "
                        "open it with recover to move it aside and start a new one")
            for step in range(version, SCHEMA_VERSION):
                for statement in _MIGRATIONS[step]:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if version:
            log.info("journal %s migrated from schema v%d to v%d", self.path, version, SCHEMA_VERSION)

    def _read_last_seq(self) -> int:
        conn = self._conn
        assert conn is not None
        try:
            return _high_water(conn)
        except sqlite3.Error as exc:
            self._conn = None
            conn.close()
            if getattr(exc, "sqlite_errorcode", None) in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
                raise JournalCorruptError(
                    f"{self.path}: not a readable journal ({_one_line(exc)}); "
                    "open it with recover to move it aside and start a new one") from None
            raise _Unavailable(exc, self.path, "cannot read journal") from None

    # ------------------------------------------------------------ plumbing

    def _check_open(self) -> None:
        if self._closed:
            raise JournalError(f"{self.path}: journal is closed")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; committed when the block ends, rolled back on any error.

        A failure of the disk or the file raises _WriteFailed (the caller degrades); anything else
        raised inside the block (a value that is not JSON-able) propagates unchanged.
        """
        self._check_open()
        conn = self._conn
        if conn is None or self._conn_readonly:
            raise _WriteFailed(CANNOT_OPEN, self._reason or f"{CANNOT_OPEN}: {self.path}")
        try:
            # IMMEDIATE takes the write lock up front, so a second process (a CLI export) waits in
            # busy_timeout here instead of failing half-way through our transaction.
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _WriteFailed(*describe(exc, self.path)) from None
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    log.debug("rollback failed", exc_info=True)
            if isinstance(exc, sqlite3.Error):
                raise _WriteFailed(*describe(exc, self.path)) from None
            raise

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Rows from the file; while it cannot be read (degraded, no connection), none."""
        self._check_open()
        conn = self._conn
        if conn is None:
            return []
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            # Reading is for display and restore; an unreadable file must not take the caller down.
            # The in-memory part of every answer is still there.
            self._degrade(*describe(exc, self.path))
            return []

    def _sid(self, service: str) -> int | None:
        """The stored id of a service name, or None if it never had a sample flushed."""
        sid = self._sids.get(service)
        if sid is None:
            rows = self._query("SELECT sid FROM services WHERE name = ?", (service,))
            if rows:
                sid = int(rows[0][0])
                self._sids[service] = sid
        return sid

    # ------------------------------------------------------------ events

    def append(self, event: Event) -> Event:
        """Number and store one event; committed before this returns. Returns the event with its seq.

        The engine shows an event to anyone only after this returned: that ordering is what makes
        "everything that was shown survives a crash" true. While degraded the event is numbered
        and held in memory instead (health() says so), and written by a later flush().
        """
        return self.append_many((event,))[0]

    def append_many(self, events: Sequence[Event]) -> list[Event]:
        """Number and store several events in one transaction (all or none).

        Raises JournalError only for a closed journal or an event that cannot be serialized; the
        disk's troubles degrade the journal instead (see the module docstring).
        """
        self._check_open()
        if not events:
            return []
        if not self._condition:
            try:
                return self._insert(events)
            except _WriteFailed as exc:
                self._degrade(exc.condition, exc.reason)
        held: list[tuple[Event, str]] = []
        seq = self._last_seq
        for event in events:
            seq += 1
            numbered = dataclasses.replace(event, seq=seq)
            # Serialized now: a bad event fails as it would when healthy, and the write-back has
            # only SQLite left to do (it runs on the engine's loop, in one stall).
            held.append((numbered, _serialize(numbered)))
        self._pending.extend(held)
        self._last_seq = seq
        overflow = len(self._pending) - _MAX_PENDING_EVENTS
        if overflow > 0:
            # Delivered already, so nobody misses them live; only the record of them is lost.
            del self._pending[:overflow]
            if not self._dropped_events:
                log.warning("journal %s: more than %d events held in memory; the oldest are no longer "
                            "kept for the journal", self.path, _MAX_PENDING_EVENTS)
            self._dropped_events += overflow
        return [e for e, _ in held]

    def _insert(self, events: Sequence[Event]) -> list[Event]:
        stored: list[Event] = []
        with self._write() as conn:
            # Read the high-water mark under the write lock rather than trusting a cached counter:
            # cheap, and a second writer on the same file can then never make two events share a seq.
            seq = max(_high_water(conn), self._last_seq)
            rows = []
            for event in events:
                seq += 1
                numbered = dataclasses.replace(event, seq=seq)
                rows.append((seq, numbered.KIND, numbered.service, numbered.wall, numbered.mono,
                             _serialize(numbered)))
                stored.append(numbered)
            conn.executemany(
                "INSERT INTO events (seq, kind, service, wall, mono, record) VALUES (?, ?, ?, ?, ?, ?)", rows)
        self._last_seq = seq
        # Kinds and seqs only: payloads can carry error texts with URLs or tokens in them.
        log.debug("journal appended seq %d..%d", stored[0].seq, seq)
        return stored

    def events(self, service: str | None = None, kinds: Sequence[str] | None = None, since_seq: int = 0,
               since_wall: float | None = None, limit: int | None = 1000,
               newest_first: bool = False) -> list[Event]:
        """Stored events, rebuilt as event values (seq, wall and mono restored).

        `since_seq` is exclusive (events after it: resume from the last seq you saw); `since_wall` is
        inclusive. `limit` None means no limit. Ordered by seq, oldest first unless `newest_first`.
        While degraded, events held in memory are included.
        """
        self._check_open()
        where = ["seq > ?"]
        params: list[Any] = [since_seq]
        if service is not None:
            where.append("service = ?")
            params.append(service)
        if kinds is not None:
            if not kinds:
                return []
            kinds = tuple(kinds)
            where.append(f"kind IN ({', '.join('?' * len(kinds))})")
            params.extend(kinds)
        if since_wall is not None:
            where.append("wall >= ?")
            params.append(since_wall)
        sql = (f"SELECT record, mono, wall FROM events WHERE {' AND '.join(where)}"
               f" ORDER BY seq {'DESC' if newest_first else 'ASC'}")
        if limit is not None:
            sql += " LIMIT ?"
            params.append(max(0, limit))
        out: list[Event] = []
        for record, mono, wall in self._query(sql, params):
            try:
                out.append(event_from_record(json.loads(record), mono=mono, wall=wall))
            except (ValueError, KeyError, TypeError) as exc:
                # One unreadable row (written by a newer kind, say) must not hide the rest.
                log.warning("journal %s: skipping an unreadable event row: %s", self.path, _one_line(exc))
        held = [e for e, _ in self._pending
                if e.seq > since_seq and (service is None or e.service == service)
                and (kinds is None or e.KIND in kinds) and (since_wall is None or e.wall >= since_wall)]
        if held:
            # Held events are newer than every stored one, so one merge and cut keeps `limit` exact.
            out = sorted([*out, *held], key=lambda e: e.seq, reverse=newest_first)
            if limit is not None:
                out = out[:max(0, limit)]
        return out

    def last_seq(self) -> int:
        """The highest seq ever assigned (0 for a new journal); survives pruning and restarts."""
        return self._last_seq

    # ------------------------------------------------------------ latency

    def record_latency(self, service: str, wall: float, latency_ms: float | None, ok: bool) -> None:
        """Buffer one check's result; written by the next flush(). `latency_ms` None: no response.

        Stored at millisecond (wall) and microsecond (latency) resolution, buffered or not.
        """
        self._buffer.append((service, _to_ms(wall), _to_us(latency_ms), bool(ok)))
        if len(self._buffer) >= _MAX_BUFFERED:
            self._bound_samples(lambda: self._buffer, "latency samples")

    def _bound_samples(self, current: Callable[[], list[Any]], what: str) -> None:
        """A full sample buffer: flush it, or (the journal degraded) drop its older half. `current`
        reads the buffer anew, since a flush replaces it."""
        if not self._condition:
            self.flush()
        buffer = current()
        if len(buffer) >= _MAX_BUFFERED:
            # Samples are expendable, memory is not: keep the newer half and go on. Events are
            # held longer (_MAX_PENDING_EVENTS); they are the record.
            dropped = len(buffer) - _MAX_BUFFERED // 2
            del buffer[:dropped]
            self._dropped_samples += dropped
            log.warning("journal: could not flush %s (%s); dropped %d oldest", what, self._reason, dropped)

    def flush(self) -> int:
        """Write buffered samples and their per-minute rollups in one transaction; returns samples written.

        The buffer is cleared only after the commit, so a failed flush loses nothing. While
        degraded, this is also where the disk is tried again (on the retry schedule, monotonic
        time): held events and state first, in order, then samples. Never raises for the disk's
        sake; health() tells whether it worked.
        """
        self._check_open()
        if self._condition:
            if not self._retry.due(self._clock.monotonic()) or not self._resume():
                return 0
        if not self._flush_values():
            return 0
        if not self._buffer:
            return 0
        try:
            return self._write_samples()
        except _WriteFailed as exc:
            self._degrade(exc.condition, exc.reason)
            return 0

    def _sids_for(self, conn: sqlite3.Connection,
                  names: Iterable[str]) -> tuple[dict[str, int], dict[str, int]]:
        """Each name's service row id, inserting rows for new names; also which ids are new.

        The new ones are remembered by the caller only after COMMIT: a rolled-back row must not be.
        """
        sids: dict[str, int] = {}
        new_sids: dict[str, int] = {}
        for name in names:
            sid = self._sids.get(name)
            if sid is None:
                row = conn.execute("SELECT sid FROM services WHERE name = ?", (name,)).fetchone()
                if row is None:
                    sid = int(conn.execute("INSERT INTO services (name) VALUES (?)", (name,)).lastrowid or 0)
                else:
                    sid = int(row[0])
                new_sids[name] = sid
            sids[name] = sid
        return sids, new_sids

    def _write_samples(self) -> int:
        batch = self._buffer
        with self._write() as conn:
            sids, new_sids = self._sids_for(conn, {s[0] for s in batch})
            conn.executemany(
                "INSERT OR REPLACE INTO samples (sid, wall_ms, latency_us, ok) VALUES (?, ?, ?, ?)",
                [(sids[name], wall_ms, latency_us, ok) for name, wall_ms, latency_us, ok in batch])
            # Aggregated here first: one UPSERT per (service, minute) instead of one per sample.
            buckets: dict[tuple[int, int], _Bucket] = {}
            for name, wall_ms, latency_us, ok in batch:
                key = (sids[name], wall_ms // _MINUTE_MS)
                bucket = buckets.get(key)
                if bucket is None:
                    bucket = buckets[key] = _Bucket()
                bucket.add(latency_us, ok)
            conn.executemany(_UPSERT_ROLLUP, [
                (sid, minute, b.count, b.failures, b.timed, b.min_us, b.max_us, b.sum_us)
                for (sid, minute), b in buckets.items()])
        # Only now, after COMMIT: a rolled-back service row must not be remembered.
        self._sids.update(new_sids)
        self._buffer = []
        log.debug("journal flushed %d samples into %d rollup minutes", len(batch), len(buckets))
        return len(batch)

    def latency(self, service: str, since_wall: float,
                until_wall: float | None = None) -> list[tuple[float, float | None]]:
        """Raw samples (wall, latency_ms) with since_wall <= wall < until_wall, oldest first.

        Includes samples still in the buffer. Only as far back as `raw_retention_hours`.
        """
        lo = _to_ms(since_wall)
        hi = None if until_wall is None else _to_ms(until_wall)
        rows: list[tuple[int, int | None]] = []
        sid = self._sid(service)
        if sid is not None:
            sql = "SELECT wall_ms, latency_us FROM samples WHERE sid = ? AND wall_ms >= ?"
            params: list[Any] = [sid, lo]
            if hi is not None:
                sql += " AND wall_ms < ?"
                params.append(hi)
            rows = [(int(w), lat) for w, lat in self._query(sql + " ORDER BY wall_ms", params)]
        rows.extend((w, lat) for name, w, lat, _ in self._buffer
                    if name == service and w >= lo and (hi is None or w < hi))
        rows.sort(key=lambda r: r[0])  # stable: equal times keep their recording order
        return [(w / 1000.0, None if lat is None else lat / 1000.0) for w, lat in rows]

    def latency_rollup(self, service: str, since_wall: float,
                       until_wall: float | None = None) -> list[RollupRow]:
        """Per-minute aggregates for minutes starting in [minute of since_wall, until_wall), oldest first.

        Includes samples still in the buffer, so the current minute is up to date.
        """
        first = _to_ms(since_wall) // _MINUTE_MS
        hi = None if until_wall is None else _to_ms(until_wall)
        buckets: dict[int, _Bucket] = {}
        sid = self._sid(service)
        if sid is not None:
            sql = ("SELECT minute, count, failures, timed, min_us, max_us, sum_us FROM rollups"
                   " WHERE sid = ? AND minute >= ?")
            params: list[Any] = [sid, first]
            if hi is not None:
                sql += " AND minute * 60000 < ?"
                params.append(hi)
            for minute, count, failures, timed, min_us, max_us, sum_us in self._query(sql, params):
                bucket = buckets.setdefault(int(minute), _Bucket())
                bucket.merge(count, failures, timed, min_us, max_us, sum_us)
        for name, wall_ms, latency_us, ok in self._buffer:
            minute = wall_ms // _MINUTE_MS
            if name == service and minute >= first and (hi is None or minute * _MINUTE_MS < hi):
                buckets.setdefault(minute, _Bucket()).add(latency_us, ok)
        return [buckets[m].row(m) for m in sorted(buckets)]

    # ------------------------------------------------------------ state

    def save_state(self, key: str, value: Any) -> None:
        """Store one JSON-able value under `key` (committed before returning; held while degraded)."""
        self._check_open()
        try:
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise JournalError(f"state {key!r}: value is not JSON-able: {_one_line(exc)}") from None
        self._put_state(key, text)

    def load_state(self, key: str, default: Any = None) -> Any:
        if key in self._pending_state:
            held = self._pending_state[key]
            return default if held is None else json.loads(held)
        rows = self._query("SELECT value FROM state WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else default

    def delete_state(self, key: str) -> None:
        """Forget `key` (a breaker no longer forced, a service resumed); no error if absent."""
        self._check_open()
        self._put_state(key, None)

    def _put_state(self, key: str, text: str | None) -> None:
        if not self._condition:
            try:
                with self._write() as conn:
                    _write_state(conn, key, text)
                return
            except _WriteFailed as exc:
                self._degrade(exc.condition, exc.reason)
        # Keys are few (one per service or group at most), so holding the latest of each is bounded.
        self._pending_state[key] = text

    def state_items(self, prefix: str) -> dict[str, Any]:
        """All keys starting with `prefix` with their values.

        The engine's prefixes: "breaker:" (forced breaker states), "maint:" (maintenance windows),
        "storm:" (storm-guard trips), "paused:" (paused services).
        """
        # substr instead of LIKE: prefixes may contain '%' or '_' and keys are few.
        rows = self._query("SELECT key, value FROM state WHERE substr(key, 1, ?) = ? ORDER BY key",
                           (len(prefix), prefix))
        items = {key: json.loads(value) for key, value in rows}
        for key, held in self._pending_state.items():
            if key.startswith(prefix):
                if held is None:
                    items.pop(key, None)
                else:
                    items[key] = json.loads(held)
        return dict(sorted(items.items()))

    # ------------------------------------------------------------ upkeep

    def prune(self) -> None:
        """Delete what is past its retention: raw samples, rollups, events (by wall time).

        One short transaction per service rather than one huge one, so the write lock and the WAL
        stay small even when an hour of samples for a big fleet goes at once. Cost is about
        proportional to rows deleted (≈ 3.5 M samples/s, docs/benchmarks.md: an hour of a 1,000-service
        fleet checked every second is ≈ 1 s of work), so call it more often than hourly at that scale.
        Skipped while degraded: deleting needs the same disk that is failing.
        """
        self._check_open()
        if self._condition:
            return
        now = self._clock.wall()
        event_cutoff = now - self.config.event_retention_days * 86_400.0
        raw_cutoff_ms = _to_ms(now - self.config.raw_retention_hours * 3_600.0)
        rollup_cutoff = _to_ms(now - self.config.rollup_retention_days * 86_400.0) // _MINUTE_MS
        events = samples = rollups = 0
        try:
            with self._write() as conn:
                events = conn.execute("DELETE FROM events WHERE wall < ?", (event_cutoff,)).rowcount
            for (sid,) in self._query("SELECT sid FROM services"):
                with self._write() as conn:
                    samples += conn.execute("DELETE FROM samples WHERE sid = ? AND wall_ms < ?",
                                            (sid, raw_cutoff_ms)).rowcount
                    rollups += conn.execute("DELETE FROM rollups WHERE sid = ? AND minute < ?",
                                            (sid, rollup_cutoff)).rowcount
        except _WriteFailed as exc:
            self._degrade(exc.condition, exc.reason)
            return
        log.info("journal pruned %d events, %d samples, %d rollup rows", events, samples, rollups)
        self._prune_values(raw_cutoff_ms, rollup_cutoff)

    def stats(self) -> JournalStats:
        rows = self._query("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM samples),"
                           " (SELECT count(*) FROM rollups)")
        counts = rows[0] if rows else (0, 0, 0)
        size = 0
        for suffix in ("", "-wal"):
            try:
                size += os.path.getsize(f"{self.path}{suffix}")
            except OSError:
                pass
        return JournalStats(events=int(counts[0]) + len(self._pending), samples=int(counts[1]),
                            rollups=int(counts[2]), buffered=len(self._buffer), file_bytes=size,
                            last_seq=self._last_seq)

    # ------------------------------------------------------------ health

    def health(self) -> JournalHealth:
        """Writing normally, or degraded and why; what is held in memory meanwhile."""
        return JournalHealth(
            ok=not self._condition, reason=self._reason, condition=self._condition,
            since_wall=self._since_wall, pending_events=len(self._pending),
            pending_state=len(self._pending_state), pending_samples=len(self._buffer),
            dropped_events=self._dropped_events, dropped_samples=self._dropped_samples,
            moved_aside=self._moved_aside)

    @property
    def degraded_reason(self) -> str:
        """Empty while the journal writes normally; otherwise one line saying why it does not."""
        return self._reason

    def set_health_listener(self, listener: Callable[[JournalHealth], None] | None) -> None:
        """Call `listener` with the new health on every change: degraded, another condition, ok again.

        If the journal is already degraded (it opened so), or replaced an unreadable file at open,
        the listener is called once right away: wire it after open() returned and miss nothing.
        Runs on the caller's thread, inside append()/flush(); it may append events (an alert) but
        must not block. core/journal_guard.JournalAlerts is the engine's listener.
        """
        self._listener = listener
        if listener is not None and (self._condition or self._moved_aside):
            self._notify()

    def _notify(self) -> None:
        listener = self._listener
        if listener is None:
            return
        try:
            listener(self.health())
        except Exception:  # noqa: BLE001 - a broken listener must not stop the journal
            log.exception("journal health listener failed")

    def _degrade(self, condition: str, reason: str) -> None:
        """Enter (or stay in) degraded mode; tells the listener if the condition is new."""
        now = self._clock.monotonic()
        if not self._condition:
            self._since_wall = self._clock.wall()
            self._retry.reset()
            delay = self._retry.failed(now)
            self._condition, self._reason = condition, reason
            log.warning("journal degraded: %s; events still stream, held in memory; retrying in %g s",
                        reason, delay)
            self._notify()
            return
        changed = condition != self._condition
        self._condition, self._reason = condition, reason
        if changed:
            log.warning("journal still degraded, now: %s", reason)
            self._notify()

    def _resume(self) -> bool:
        """One retry: reconnect if needed, write what is held (events, then state). True if it worked."""
        now = self._clock.monotonic()
        if self._condition == CORRUPT and not self._replace_corrupt(self._reason):
            delay = self._retry.failed(now)
            log.info("journal file unusable and cannot be moved aside yet; next try in %g s", delay)
            return False
        try:
            if not self._draining and (self._conn is None or self._conn_readonly
                                       or self._condition not in _KEEP_CONNECTION):
                self._reconnect()
            # A retry must not stall the engine's loop waiting for a lock it did not get last time.
            _set_busy_timeout(self._conn, 0)
            written = self._write_held(_WRITE_BACK_CHUNK)
        except (_WriteFailed, _Unavailable) as exc:
            self._draining = False
            delay = self._retry.failed(now)
            log.info("journal still not writable (%s); next try in %g s", exc.reason, delay)
            self._degrade(exc.condition, exc.reason)
            return False
        except JournalError as exc:
            # Found corrupt on reopening (the next try moves it aside), or replaced by a newer
            # Faultwatch's journal meanwhile (not ours to fix).
            self._draining = False
            delay = self._retry.failed(now)
            log.info("journal file unusable (%s); next try in %g s", exc, delay)
            self._degrade(CORRUPT if isinstance(exc, JournalCorruptError) else UNAVAILABLE, str(exc))
            return False
        if self._pending:
            # More held than one stall should write: the next flush (the engine's next tick)
            # writes the next chunk at once; new events queue behind, so order is kept.
            self._retry.reset()
            self._draining = True
            log.info("journal wrote %d held events, %d to go", written, len(self._pending))
            return False
        self._draining = False
        _set_busy_timeout(self._conn, _BUSY_TIMEOUT_MS)
        was = self._reason
        self._condition = self._reason = ""
        self._since_wall = None
        self._retry.reset()
        log.warning("journal writable again (was: %s); held events written", was)
        self._notify()
        return True

    def _replace_corrupt(self, why: str) -> bool:
        """Move an unreadable file aside (one warning); True if a new journal can be started.

        Saved operator decisions are carried over as far as the old file still yields them.
        """
        saved: list[tuple[str, str]] = []
        conn = self._conn
        if conn is not None:
            try:
                saved = [(str(k), str(v)) for k, v in conn.execute("SELECT key, value FROM state")]
            except sqlite3.Error:
                log.info("journal %s: saved state not readable from the corrupt file", self.path)
        try:
            # Renaming a file that is still open is fine on POSIX; the connection goes after.
            moved = _move_aside(self.path, self._clock.wall())
        except JournalError as exc:
            log.info("%s", exc)
            return False
        if conn is not None:
            self._conn, self._conn_readonly = None, False
            try:
                conn.close()
            except sqlite3.Error:
                log.debug("closing the corrupt journal failed", exc_info=True)
        for key, text in saved:
            self._pending_state.setdefault(key, text)
        why = why.split("; open it with recover")[0]
        log.warning("journal unreadable (%s); kept it as %s and started a new journal", why, moved)
        self._moved_aside = str(moved)
        # The new file starts empty; held events keep their seqs, so numbering still never repeats.
        return True

    def _reconnect(self) -> None:
        """Drop the old connection (it may point at a dead mount) and open the file afresh."""
        old, self._conn = self._conn, None
        self._conn_readonly = False
        if old is not None:
            try:
                old.close()
            except sqlite3.Error:
                log.debug("closing the old connection failed", exc_info=True)
        # The file may be a different one now (a restored disk): cached service ids mean nothing.
        self._sids.clear()
        try:
            self._conn = self._connect()
        except _Unavailable:
            self._open_readonly()
            raise

    def _write_held(self, limit: int) -> int:
        """Write held state and up to `limit` held events in one transaction, keeping their seqs."""
        chunk = self._pending[:limit]
        with self._write() as conn:
            if chunk:
                high = _high_water(conn)
                first = chunk[0][0].seq
                if high >= first:
                    # Someone else wrote to this file meanwhile (another Faultwatch on the same path):
                    # seqs must stay unique, so ours move up; the live stream showed the old ones.
                    shift = high - first + 1
                    log.warning("journal %s: seqs %d..%d were taken by another writer; stored as %d..%d",
                                self.path, first, chunk[-1][0].seq, first + shift, chunk[-1][0].seq + shift)
                    moved = [dataclasses.replace(e, seq=e.seq + shift) for e, _ in chunk]
                    chunk = [(e, _serialize(e)) for e in moved]
                conn.executemany(
                    "INSERT INTO events (seq, kind, service, wall, mono, record) VALUES (?, ?, ?, ?, ?, ?)",
                    [(e.seq, e.KIND, e.service, e.wall, e.mono, text) for e, text in chunk])
            for key, text in self._pending_state.items():
                _write_state(conn, key, text)
        if chunk:
            self._last_seq = max(self._last_seq, chunk[-1][0].seq)
        del self._pending[:len(chunk)]
        self._pending_state = {}
        return len(chunk)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Flush samples, checkpoint the WAL into the main file, close. Safe to call twice.

        A degraded journal tries the disk once more first; what still cannot be written is named
        in a warning (counts only), then dropped.
        """
        if self._closed:
            return
        while self._condition and not self._resume() and self._draining:
            pass  # write back every chunk: no later tick will
        self.flush()
        if self._condition:
            log.warning("journal %s closed while degraded (%s): %d events, %d state changes and %d "
                        "samples were never written", self.path, self._reason, len(self._pending),
                        len(self._pending_state), len(self._buffer))
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if not self._conn_readonly:
                # TRUNCATE leaves a single self-contained file behind (easy to copy or back up).
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            # Not fatal: the WAL is replayed on the next open.
            log.warning("journal %s: checkpoint at close failed: %s", self.path, _one_line(exc))
        finally:
            conn.close()
        log.info("journal %s closed (last seq %d)", self.path, self._last_seq)

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------ values
    #
    # What a check read (a Modbus register, an SNMP OID, a TLS certificate's days left), numeric
    # values only: text and booleans stay in events and snapshots. Kept exactly like latency: raw
    # samples (REAL, ~24 bytes a row) for `raw_retention_hours`, per-minute min/mean/max rollups for
    # `rollup_retention_days`, buffered and written by flush(), bounded by prune(). Only services
    # whose check reads a number write here, so an http-only fleet adds nothing.

    def record_value(self, service: str, wall: float, value: float) -> None:
        """Buffer one numeric value read by a check; written by the next flush(). Non-finite values
        (NaN, inf) are not stored: they cannot be charted or averaged."""
        v = float(value)
        if not math.isfinite(v):
            return
        self._value_buffer.append((service, _to_ms(wall), v))
        if len(self._value_buffer) >= _MAX_BUFFERED:
            self._bound_samples(lambda: self._value_buffer, "values")

    def values(self, service: str, since_wall: float,
               until_wall: float | None = None) -> list[tuple[float, float]]:
        """Raw values (wall, value) with since_wall <= wall < until_wall, oldest first, buffered ones
        included. Only as far back as `raw_retention_hours`."""
        lo = _to_ms(since_wall)
        hi = None if until_wall is None else _to_ms(until_wall)
        rows: list[tuple[int, float]] = []
        sid = self._sid(service)
        if sid is not None:
            sql = "SELECT wall_ms, value FROM value_samples WHERE sid = ? AND wall_ms >= ?"
            params: list[Any] = [sid, lo]
            if hi is not None:
                sql += " AND wall_ms < ?"
                params.append(hi)
            rows = [(int(w), float(v)) for w, v in self._query(sql + " ORDER BY wall_ms", params)]
        rows.extend((w, v) for name, w, v in self._value_buffer
                    if name == service and w >= lo and (hi is None or w < hi))
        rows.sort(key=lambda r: r[0])
        return [(w / 1000.0, v) for w, v in rows]

    def value_rollup(self, service: str, since_wall: float,
                     until_wall: float | None = None) -> list[ValueRollupRow]:
        """Per-minute min/mean/max of the values for minutes starting in [minute of since_wall,
        until_wall), oldest first; the current minute includes buffered values."""
        first = _to_ms(since_wall) // _MINUTE_MS
        hi = None if until_wall is None else _to_ms(until_wall)
        buckets: dict[int, _ValueBucket] = {}
        sid = self._sid(service)
        if sid is not None:
            sql = "SELECT minute, count, min, max, sum FROM value_rollups WHERE sid = ? AND minute >= ?"
            params: list[Any] = [sid, first]
            if hi is not None:
                sql += " AND minute * 60000 < ?"
                params.append(hi)
            for minute, count, lo_v, hi_v, total in self._query(sql, params):
                buckets.setdefault(int(minute), _ValueBucket()).merge(int(count), lo_v, hi_v, total)
        for name, wall_ms, v in self._value_buffer:
            minute = wall_ms // _MINUTE_MS
            if name == service and minute >= first and (hi is None or minute * _MINUTE_MS < hi):
                buckets.setdefault(minute, _ValueBucket()).add(v)
        return [buckets[m].row(m) for m in sorted(buckets)]

    def value_counts(self) -> tuple[int, int]:
        """(raw value rows, value rollup rows) on disk; O(rows), for diagnostics and tests."""
        rows = self._query("SELECT (SELECT count(*) FROM value_samples), (SELECT count(*) FROM value_rollups)")
        return (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)

    def _flush_values(self) -> bool:
        """Write buffered values and their rollups (called by flush()); False if the disk failed
        (the journal is then degraded and the values stay buffered)."""
        if not self._value_buffer:
            return True
        try:
            self._write_values()
        except _WriteFailed as exc:
            self._degrade(exc.condition, exc.reason)
            return False
        return True

    def _write_values(self) -> None:
        batch = self._value_buffer
        with self._write() as conn:
            sids, new_sids = self._sids_for(conn, {b[0] for b in batch})
            conn.executemany("INSERT OR REPLACE INTO value_samples (sid, wall_ms, value) VALUES (?, ?, ?)",
                             [(sids[name], w, v) for name, w, v in batch])
            buckets: dict[tuple[int, int], _ValueBucket] = {}
            for name, w, v in batch:
                buckets.setdefault((sids[name], w // _MINUTE_MS), _ValueBucket()).add(v)
            conn.executemany(
                "INSERT INTO value_rollups (sid, minute, count, min, max, sum) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (sid, minute) DO UPDATE SET count = count + excluded.count,"
                " min = min(min, excluded.min), max = max(max, excluded.max), sum = sum + excluded.sum",
                [(sid, minute, b.count, b.lo, b.hi, b.total) for (sid, minute), b in buckets.items()])
        self._sids.update(new_sids)
        self._value_buffer = []
        log.debug("journal flushed %d values into %d rollup minutes", len(batch), len(buckets))

    def _prune_values(self, raw_cutoff_ms: int, rollup_cutoff_minute: int) -> None:
        """prune()'s share for values: the same cutoffs as latency, one transaction per service."""
        samples = rollups = 0
        try:
            for (sid,) in self._query("SELECT sid FROM services"):
                with self._write() as conn:
                    samples += conn.execute("DELETE FROM value_samples WHERE sid = ? AND wall_ms < ?",
                                            (sid, raw_cutoff_ms)).rowcount
                    rollups += conn.execute("DELETE FROM value_rollups WHERE sid = ? AND minute < ?",
                                            (sid, rollup_cutoff_minute)).rowcount
        except _WriteFailed as exc:
            self._degrade(exc.condition, exc.reason)
            return
        if samples or rollups:
            log.info("journal pruned %d values, %d value rollup rows", samples, rollups)


class _WriteFailed(JournalError):
    """A write met the disk's trouble (full, read-only, locked, failing); the journal degrades."""

    def __init__(self, condition: str, reason: str) -> None:
        super().__init__(reason)
        self.condition = condition
        self.reason = reason


class _Unavailable(JournalError):
    """The file cannot be opened for writing right now; with `degrade` the journal runs degraded."""

    def __init__(self, exc: BaseException, path: Path, doing: str) -> None:
        self.condition, detail = describe(exc, path)
        self.reason = detail
        super().__init__(f"{path}: {doing}: {_one_line(exc)}")


# Conditions a retry can meet with the same connection; the rest (I/O errors, read-only mounts,
# permissions) may mean the open file is on a dead mount, so the retry opens it afresh.
_KEEP_CONNECTION = frozenset({DISK_FULL, LOCKED})


def _try_read(uri: str) -> sqlite3.Connection | None:
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=0.05)
    except sqlite3.Error:
        return None
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error:
        conn.close()
        return None
    return conn


@dataclass(frozen=True, slots=True)
class _Salvage:
    """What could still be read from an unreadable journal: rows as stored, and its last seq."""

    high_water: int = 0
    events: tuple[tuple[int, str, str, float, float, str], ...] = ()
    state: tuple[tuple[str, str], ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.high_water or self.events or self.state)

    def summary(self) -> str:
        if self.empty:
            return ""
        return (f"; carried over {len(self.events)} events and {len(self.state)} saved settings,"
                f" numbering goes on after seq {self.high_water}")


# Salvage reads at most this much of a bad file into memory (the front: the schema, the small
# tables and the oldest events live there; a truncated file has lost its end anyway).
_SALVAGE_BYTES = 64 * 1024 * 1024


def _salvage(path: Path) -> _Salvage:
    """Best effort: read the event seq high-water mark, saved state and events from a bad file.

    SQLite refuses a file shorter than its header says (the usual truncation), so the front of it
    is loaded into memory with the header's page count set to what is there, as a rollback-journal
    database (memory cannot do WAL). Each read stops at the first damaged page; never raises.
    """
    try:
        with open(path, "rb") as f:
            data = bytearray(f.read(_SALVAGE_BYTES))
    except OSError:
        return _Salvage()
    if len(data) < 100 or not data.startswith(b"SQLite format 3\0"):
        return _Salvage()
    page_size = int.from_bytes(data[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return _Salvage()
    pages = len(data) // page_size
    del data[pages * page_size:]
    data[28:32] = pages.to_bytes(4, "big")
    data[18] = data[19] = 1
    conn = sqlite3.connect(":memory:")
    try:
        try:
            conn.deserialize(data)
        except sqlite3.Error:
            return _Salvage()
        del data
        high = 0
        try:
            row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
            high = int(row[0]) if row else 0
        except (sqlite3.Error, TypeError, ValueError):
            pass
        state: list[tuple[str, str]] = []
        try:
            for key, value in conn.execute("SELECT key, value FROM state"):
                json.loads(value)  # only values the journal can read back
                state.append((str(key), str(value)))
        except (sqlite3.Error, ValueError, TypeError):
            pass
        events: list[tuple[int, str, str, float, float, str]] = []
        try:
            for seq, kind, service, wall, mono, record in conn.execute(
                    "SELECT seq, kind, service, wall, mono, record FROM events ORDER BY seq"):
                events.append((int(seq), str(kind), str(service), float(wall), float(mono), str(record)))
        except (sqlite3.Error, ValueError, TypeError):
            pass  # a damaged page: keep what came before it
        if events:
            high = max(high, events[-1][0])
        return _Salvage(high, tuple(events), tuple(state))
    finally:
        conn.close()


def _set_busy_timeout(conn: sqlite3.Connection | None, ms: int) -> None:
    if conn is not None:
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(ms)}")
        except sqlite3.Error:
            log.debug("setting busy_timeout failed", exc_info=True)


def _serialize(event: Event) -> str:
    try:
        return json.dumps(event.to_record(), ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise JournalError(f"cannot store {event.KIND} event: {_one_line(exc)}") from None


def _write_state(conn: sqlite3.Connection, key: str, text: str | None) -> None:
    if text is None:
        conn.execute("DELETE FROM state WHERE key = ?", (key,))
    else:
        conn.execute("INSERT INTO state (key, value) VALUES (?, ?)"
                     " ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, text))


def _high_water(conn: sqlite3.Connection) -> int:
    row = conn.execute(
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),"
        " coalesce((SELECT max(seq) FROM events), 0))").fetchone()
    return int(row[0])


def _move_aside(path: Path, wall: float) -> Path:
    """Rename a bad journal and its -wal/-shm files; returns the new name of the main file."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(wall))
    # Appended, not substituted: faultwatch.db.corrupt-<time> still says what the file was.
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    try:
        os.replace(path, target)
        # Companions that survived the failed open must go too: SQLite would otherwise replay the
        # old WAL into the new file. (Usually SQLite has already dropped an unusable WAL itself.)
        for suffix in ("-wal", "-shm"):
            companion = Path(f"{path}{suffix}")
            if companion.exists():
                os.replace(companion, Path(f"{target}{suffix}"))
    except OSError as exc:
        raise JournalError(f"{path}: cannot move the unreadable journal aside: {_one_line(exc)}") from None
    return target
