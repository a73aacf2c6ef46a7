"""The journal: the durable record of what happened (events) and how fast things were (latency).

Owns one SQLite file. Events are numbered here (`seq`) and committed before anyone else sees them,
so after a crash everything any listener, stream or API client was ever shown is still on disk.
Latency samples are buffered and written in batches, with per-minute rollups kept alongside so long
ranges are charted from 1,440 points a day instead of 86,400 per service. A small key/value table
keeps operator decisions (forced breaker states, maintenance, paused services, storm-guard trips)
across restarts.

Used from one thread at a time (the engine's loop thread); every call is synchronous and short.

Storage, and why it stays bounded (1,000 services; sizes measured on this machine, page overhead
included):

* Raw samples: wall time in integer milliseconds and latency in integer microseconds (smaller than
  REAL doubles), in a WITHOUT ROWID table keyed by (service, time): one B-tree instead of a table
  plus an index, about 20 bytes per sample (41 with a rowid table and an index). Each check is
  one sample, so the rate is services / check interval:
  at 1 s: 1,000/s × 3,600 × 48 h (`raw_retention_hours`) = 172.8 M rows ≈ 3.5 GB (6 h: 0.44 GB);
  at the default 30 s: 5.8 M rows ≈ 0.12 GB. Charts older than the raw window use rollups.
* Per-minute rollups: one row per service and minute that had samples, about 30 bytes.
  1,000 × 1,440 × 30 days (`rollup_retention_days`) = 43.2 M rows ≈ 1.3 GB, whatever the check
  interval (any interval ≤ 60 s fills every minute). This is the largest table at default settings;
  it is kept as designed (per-minute for 30 days) and `prune()` bounds it.
* Events: state changes only, about 300 bytes each; a calm fleet writes hundreds a day (kilobytes),
  and even a sustained 10,000 a day × 90 days (`event_retention_days`) is ≈ 0.27 GB.

So 1,000 services over 30 days at default settings: ≈ 1.3 GB rollups + 0.12 GB raw + events,
≈ 1.5 GB; checking every second instead adds ≈ 3.4 GB of raw samples at 48 h retention.
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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.clock import Clock
from core.config import JournalConfig
from core.events import Event, event_from_record
from core.logs import JOURNAL as log


SCHEMA_VERSION = 1

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
)
assert len(_MIGRATIONS) == SCHEMA_VERSION

_BUSY_TIMEOUT_MS = 5000
# After a checkpoint the WAL is cut back to this size; without it one big prune() leaves a WAL file
# as large as everything it deleted, for good.
_WAL_SIZE_LIMIT = 64 * 1024 * 1024
# If nobody flushes (or flushing keeps failing, e.g. a full disk), memory must still be bounded.
_MAX_BUFFERED = 50_000
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

    def __init__(self, path: Path, config: JournalConfig, clock: Clock) -> None:
        """Open (creating if needed) the journal at `path`; raises JournalError (one line).

        A journal left behind by a killed process opens normally: SQLite replays its WAL.
        """
        self.path = Path(path)
        self.config = config
        self._clock = clock
        self._buffer: list[_Sample] = []
        self._sids: dict[str, int] = {}
        self._conn: sqlite3.Connection | None = self._connect()
        self._last_seq = self._read_last_seq()
        log.info("journal %s open (schema v%d, last seq %d)", self.path, SCHEMA_VERSION, self._last_seq)

    @classmethod
    def open(cls, path: Path, config: JournalConfig, clock: Clock, *, recover: bool = False) -> Journal:
        """Open the journal; with `recover`, a corrupt or foreign file is moved aside and a fresh one started.

        The bad file is renamed, never deleted (path.with_suffix(".corrupt-<UTC time>")), together
        with its -wal/-shm companions, so it can still be inspected or salvaged.
        """
        try:
            return cls(path, config, clock)
        except JournalCorruptError as exc:
            if not recover:
                raise
            moved = _move_aside(Path(path), clock.wall())
            log.warning("journal %s was unreadable (%s); moved it to %s and started a new journal",
                        path, exc, moved)
            return cls(path, config, clock)

    # ------------------------------------------------------------ opening

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                # Created 0600 before SQLite sees it: SQLite gives the -wal and -shm files the main
                # file's mode, and the journal may hold whatever services put in their errors.
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot create journal: {_one_line(exc)}") from None
        try:
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE … COMMIT) so append()
            # knows exactly when its row is durable. check_same_thread=False: the engine may open the
            # journal before its loop thread starts; use stays serialized on one thread at a time.
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=_BUSY_TIMEOUT_MS / 1000.0)
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: cannot open journal: {_one_line(exc)}") from None
        try:
            self._setup(conn)
        except sqlite3.DatabaseError as exc:
            conn.close()
            code = getattr(exc, "sqlite_errorcode", None)
            if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
                raise JournalCorruptError(
                    f"{self.path}: not a readable journal ({_one_line(exc)}); "
                    "open it with recover to move it aside and start a new one") from None
            raise JournalError(f"{self.path}: cannot open journal: {_one_line(exc)}") from None
        except JournalError:
            conn.close()
            raise
        return conn

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
        conn = self._live()
        try:
            return _high_water(conn)
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: cannot read journal: {_one_line(exc)}") from None

    # ------------------------------------------------------------ plumbing

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError(f"{self.path}: journal is closed")
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; committed when the block ends, rolled back on any error."""
        conn = self._live()
        try:
            # IMMEDIATE takes the write lock up front, so a second process (a CLI export) waits in
            # busy_timeout here instead of failing half-way through our transaction.
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: journal write failed: {_one_line(exc)}") from None
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
                raise JournalError(f"{self.path}: journal write failed: {_one_line(exc)}") from None
            raise

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._live().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: journal read failed: {_one_line(exc)}") from None

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
        "everything that was shown survives a crash" true.
        """
        return self.append_many((event,))[0]

    def append_many(self, events: Sequence[Event]) -> list[Event]:
        """Number and store several events in one transaction (all or none)."""
        if not events:
            return []
        stored: list[Event] = []
        with self._write() as conn:
            # Read the high-water mark under the write lock rather than trusting a cached counter:
            # cheap, and a second writer on the same file can then never make two events share a seq.
            seq = _high_water(conn)
            rows = []
            for event in events:
                seq += 1
                numbered = dataclasses.replace(event, seq=seq)
                try:
                    record = json.dumps(numbered.to_record(), ensure_ascii=False, separators=(",", ":"))
                except (TypeError, ValueError) as exc:
                    raise JournalError(f"cannot store {numbered.KIND} event: {_one_line(exc)}") from None
                rows.append((seq, numbered.KIND, numbered.service, numbered.wall, numbered.mono, record))
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
        """
        where = ["seq > ?"]
        params: list[Any] = [since_seq]
        if service is not None:
            where.append("service = ?")
            params.append(service)
        if kinds is not None:
            if not kinds:
                return []
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
            try:
                self.flush()
            except JournalError as exc:
                # Samples are expendable, memory is not: keep the newer half and go on. Events
                # never take this path; their append() raises to the engine.
                dropped = len(self._buffer) - _MAX_BUFFERED // 2
                del self._buffer[:dropped]
                log.warning("journal: could not flush latency samples (%s); dropped %d oldest", exc, dropped)

    def flush(self) -> int:
        """Write buffered samples and their per-minute rollups in one transaction; returns samples written.

        The buffer is cleared only after the commit, so a failed flush loses nothing.
        """
        if not self._buffer:
            return 0
        batch = self._buffer
        new_sids: dict[str, int] = {}
        with self._write() as conn:
            sids: dict[str, int] = {}
            for name in {s[0] for s in batch}:
                sid = self._sids.get(name)
                if sid is None:
                    row = conn.execute("SELECT sid FROM services WHERE name = ?", (name,)).fetchone()
                    if row is None:
                        cur = conn.execute("INSERT INTO services (name) VALUES (?)", (name,))
                        sid = int(cur.lastrowid or 0)
                    else:
                        sid = int(row[0])
                    new_sids[name] = sid
                sids[name] = sid
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
        """Store one JSON-able value under `key` (committed before returning)."""
        try:
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise JournalError(f"state {key!r}: value is not JSON-able: {_one_line(exc)}") from None
        with self._write() as conn:
            conn.execute("INSERT INTO state (key, value) VALUES (?, ?)"
                         " ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, text))

    def load_state(self, key: str, default: Any = None) -> Any:
        rows = self._query("SELECT value FROM state WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else default

    def delete_state(self, key: str) -> None:
        """Forget `key` (a breaker no longer forced, a service resumed); no error if absent."""
        with self._write() as conn:
            conn.execute("DELETE FROM state WHERE key = ?", (key,))

    def state_items(self, prefix: str) -> dict[str, Any]:
        """All keys starting with `prefix` (for example "breaker.forced.") with their values."""
        # substr instead of LIKE: prefixes may contain '%' or '_' and keys are few.
        rows = self._query("SELECT key, value FROM state WHERE substr(key, 1, ?) = ? ORDER BY key",
                           (len(prefix), prefix))
        return {key: json.loads(value) for key, value in rows}

    # ------------------------------------------------------------ upkeep

    def prune(self) -> None:
        """Delete what is past its retention: raw samples, rollups, events (by wall time).

        One short transaction per service rather than one huge one, so the write lock and the WAL
        stay small even when an hour of samples for a big fleet goes at once. Cost is about
        proportional to rows deleted (measured ≈ 3.5 M samples/s here: an hour of a 1,000-service
        fleet checked every second is ≈ 1 s of work), so call it more often than hourly at that scale.
        """
        now = self._clock.wall()
        event_cutoff = now - self.config.event_retention_days * 86_400.0
        raw_cutoff_ms = _to_ms(now - self.config.raw_retention_hours * 3_600.0)
        rollup_cutoff = _to_ms(now - self.config.rollup_retention_days * 86_400.0) // _MINUTE_MS
        with self._write() as conn:
            events = conn.execute("DELETE FROM events WHERE wall < ?", (event_cutoff,)).rowcount
        samples = rollups = 0
        for (sid,) in self._query("SELECT sid FROM services"):
            with self._write() as conn:
                samples += conn.execute("DELETE FROM samples WHERE sid = ? AND wall_ms < ?",
                                        (sid, raw_cutoff_ms)).rowcount
                rollups += conn.execute("DELETE FROM rollups WHERE sid = ? AND minute < ?",
                                        (sid, rollup_cutoff)).rowcount
        log.info("journal pruned %d events, %d samples, %d rollup rows", events, samples, rollups)

    def stats(self) -> JournalStats:
        counts = self._query("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM samples),"
                             " (SELECT count(*) FROM rollups)")[0]
        size = 0
        for suffix in ("", "-wal"):
            try:
                size += os.path.getsize(f"{self.path}{suffix}")
            except OSError:
                pass
        return JournalStats(events=int(counts[0]), samples=int(counts[1]), rollups=int(counts[2]),
                            buffered=len(self._buffer), file_bytes=size, last_seq=self._last_seq)

    @property
    def closed(self) -> bool:
        return self._conn is None

    def close(self) -> None:
        """Flush samples, checkpoint the WAL into the main file, close. Safe to call twice."""
        conn = self._conn
        if conn is None:
            return
        try:
            self.flush()
        except JournalError as exc:
            log.warning("journal: %d latency samples lost at close: %s", len(self._buffer), exc)
        try:
            # TRUNCATE leaves a single self-contained file behind (easy to copy or back up).
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            # Not fatal: the WAL is replayed on the next open.
            log.warning("journal %s: checkpoint at close failed: %s", self.path, _one_line(exc))
        finally:
            self._conn = None
            conn.close()
        log.info("journal %s closed (last seq %d)", self.path, self._last_seq)

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _high_water(conn: sqlite3.Connection) -> int:
    row = conn.execute(
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),"
        " coalesce((SELECT max(seq) FROM events), 0))").fetchone()
    return int(row[0])


def _move_aside(path: Path, wall: float) -> Path:
    """Rename a bad journal and its -wal/-shm files; returns the new name of the main file."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(wall))
    target = path.with_suffix(f".corrupt-{stamp}")
    n = 1
    while target.exists():
        target = path.with_suffix(f".corrupt-{stamp}-{n}")
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
