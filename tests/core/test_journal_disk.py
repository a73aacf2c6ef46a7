"""A journal that survives the disk: full, read-only, locked, unreadable — made for real on this machine.

The conditions are real kernel and SQLite behaviour, not mocks: a small tmpfs filled to the last
block, the same tmpfs remounted read-only, an ext4 image whose kernel driver is told it hit an error
(it remounts itself read-only, as a failing disk does), a state directory a plain user may not write,
another process holding SQLite's exclusive lock, truncated or garbage copies of a real journal, and
the whole engine monitoring a device on loopback while its state directory fills up.
Each test checks the same promises: no exception reaches the caller, events are still numbered and
returned for delivery, health() says degraded and why (and the listener hears it once), writing
resumes by itself when the condition ends, and what was committed before is intact afterwards.

Mounting needs root (CAP_SYS_ADMIN); without it those tests skip with the reason. Retries are
driven with a FakeClock: nothing here sleeps to prove timing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.alerts import AlertManager
from core.clock import FakeClock
from core.config import AlertsConfig, JournalConfig, parse_config
from core.assembly import open_engine
from core.events import AlertEvent, BreakerEvent, Event, ProbeEvent, RecoveryEvent, RecoveryOutcome, ServiceStatus
from core.journal import Journal
from core.sim.devices import DeviceSpec
from core.sim.server import SimServer
from core.journal_guard import (
    CORRUPT,
    DISK_FULL,
    IO_ERROR,
    LOCKED,
    READ_ONLY,
    RULE_JOURNAL_DEGRADED,
    RULE_JOURNAL_REPLACED,
    JournalAlerts,
    JournalHealth,
)

HERE = Path(__file__).resolve().parent
WALL0 = 1_780_000_000.0


# ---------------------------------------------------------------- real conditions

def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


class Tmpfs:
    """A small tmpfs of our own: fill it, free it, remount it read-only and back."""

    def __init__(self, where: Path, size: str) -> None:
        self.path = where
        where.mkdir(parents=True, exist_ok=True)
        if shutil.which("mount") is None:
            pytest.skip("mount not installed (util-linux)")
        done = _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where))
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
        self._filler = where / "filler"

    def fill(self) -> None:
        """Take every free block (what a runaway log file does to a real disk)."""
        fd = os.open(self._filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            size = 65536
            while size:
                try:
                    os.write(fd, b"\0" * size)
                except OSError:
                    size //= 2
        finally:
            os.close(fd)
        assert os.statvfs(self.path).f_bavail == 0

    def free(self) -> None:
        self._filler.unlink()

    def remount(self, mode: str) -> None:
        done = _run("mount", "-o", f"remount,{mode}", str(self.path))
        assert done.returncode == 0, done.stderr

    def close(self) -> None:
        if _run("umount", str(self.path)).returncode != 0:
            _run("umount", "-l", str(self.path))


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Tmpfs]:
    fs = Tmpfs(tmp_path / "mnt", "1m")
    yield fs
    fs.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=0.0, start_wall=WALL0)


class Watch:
    """The engine's side, without the engine: health changes, and the alerts they become.

    Alert events are appended to the journal, as the engine's publish() does, so they take the
    same degraded path as every other event.
    """

    def __init__(self, journal: Journal, clock: FakeClock) -> None:
        self.journal = journal
        self.health: list[JournalHealth] = []
        self.alerts: list[AlertEvent] = []
        self.manager = AlertManager(AlertsConfig(), clock, {}, self._alert)
        bridge = JournalAlerts(self.manager)

        def listen(health: JournalHealth) -> None:
            self.health.append(health)
            bridge(health)

        journal.set_health_listener(listen)

    def _alert(self, event: AlertEvent) -> None:
        stored = self.journal.append(event)
        assert isinstance(stored, AlertEvent)
        self.alerts.append(stored)

    def alert_states(self, rule: str) -> list[str]:
        return [a.state for a in self.alerts if a.rule == rule]


def probe(clock: FakeClock, service: str = "pump-1", n: int = 0) -> ProbeEvent:
    return ProbeEvent(service=service, mono=clock.monotonic(), wall=clock.wall(), status=ServiceStatus.UNHEALTHY,
                      latency_ms=None, error=f"refused #{n}", consecutive_failures=n)


def records(events: list[Event]) -> list[dict[str, Any]]:
    return [e.to_record() for e in events]


def committed(path: Path) -> list[dict[str, Any]]:
    """What is in the file, read by a separate plain connection (not the journal's own view)."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return [json.loads(r) for (r,) in conn.execute("SELECT record FROM events ORDER BY seq")]
    finally:
        conn.close()


def resume(journal: Journal, clock: FakeClock, seconds: float = 60.0) -> None:
    """Let the retry schedule come due (monotonic time), then take the flush path, as the engine's tick does."""
    clock.advance_sync(seconds)
    journal.flush()


# ---------------------------------------------------------------- full disk

def test_full_disk_degrades_keeps_numbering_and_resumes(tmpfs: Tmpfs, clock: FakeClock) -> None:
    path = tmpfs.path / "state" / "faultwatch.db"
    journal = Journal.open(path, JournalConfig(), clock, recover=True)
    watch = Watch(journal, clock)
    before = [journal.append(probe(clock, n=n)) for n in range(20)]
    journal.save_state("breaker:pump-1", "forced_open")
    for n in range(30):
        journal.record_latency("pump-1", clock.wall() + n, 1.0 + n, True)
    assert journal.flush() == 30
    assert journal.health().ok and watch.health == []

    tmpfs.fill()
    # SQLite may still have room in its WAL for a few commits; keep going until the disk says no.
    shown = list(before)
    for n in range(20, 5000):
        shown.append(journal.append(probe(clock, n=n)))
        journal.record_latency("pump-1", clock.wall() + n, 2.0, True)
        journal.flush()
        if not journal.health().ok:
            break
    health = journal.health()
    assert not health.ok and health.condition == DISK_FULL
    assert health.reason.startswith("disk full: ") and str(path) in health.reason and "\n" not in health.reason
    assert [h.ok for h in watch.health] == [False]
    assert watch.alert_states(RULE_JOURNAL_DEGRADED) == ["firing"]
    assert "journaling degraded: disk full" in watch.manager.alerts()[0].message

    # Degraded: every call still works, nothing raises, seqs go on without a gap.
    for n in range(50):
        shown.append(journal.append(probe(clock, service="pump-2", n=n)))
    journal.save_state("maint:plant", {"until": None})
    journal.delete_state("breaker:pump-1")
    sampled_at = clock.wall()
    journal.record_latency("pump-2", sampled_at, 5.0, False)
    journal.prune()
    assert journal.flush() == 0
    # The alert about the full disk is numbered too (it was raised while the event that met the
    # full disk was being appended, so it takes the seq just before that event's).
    seqs = [e.seq for e in shown]
    assert seqs == sorted(seqs)
    assert sorted(seqs + [a.seq for a in watch.alerts]) == list(range(1, len(shown) + 2))
    assert [e.seq for e in journal.events(limit=None)][-50:] == seqs[-50:]
    assert [e.seq for e in journal.events(service="pump-2", limit=3, newest_first=True)] == seqs[:-4:-1]
    assert journal.load_state("maint:plant") == {"until": None}
    assert journal.state_items("breaker:") == {}
    assert journal.health().pending_events >= 50

    resume(journal, clock)  # still full: stays degraded, tells nobody again
    assert journal.health().condition == DISK_FULL and len(watch.health) == 1

    tmpfs.free()
    resume(journal, clock)
    assert journal.health().ok and journal.degraded_reason == ""
    assert [h.ok for h in watch.health] == [False, True]
    assert watch.alert_states(RULE_JOURNAL_DEGRADED) == ["firing", "resolved"]
    journal.close()

    # Everything: what was committed before, what was held, and the alerts about it, in seq order.
    stored = committed(path)
    assert [r["seq"] for r in stored] == list(range(1, len(stored) + 1))
    assert stored[:20] == records(before)
    assert records(shown) == [r for r in stored if r["kind"] == "probe"]
    assert [r["state"] for r in stored if r["kind"] == "alert"] == ["firing", "resolved"]
    with Journal.open(path, JournalConfig(), clock) as again:
        assert again.state_items("") == {"maint:plant": {"until": None}}
        assert len(again.latency("pump-1", 0)) >= 30
        assert again.latency("pump-2", 0) == [(sampled_at, 5.0)]


def test_full_disk_bounds_memory(tmpfs: Tmpfs, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Held events and samples are bounded; what overflows is counted and said, never silent."""
    monkeypatch.setattr("core.journal._MAX_PENDING_EVENTS", 100)
    monkeypatch.setattr("core.journal._MAX_BUFFERED", 200)
    path = tmpfs.path / "faultwatch.db"
    journal = Journal.open(path, JournalConfig(), clock, recover=True)
    tmpfs.fill()
    n = 0
    while journal.health().ok and n < 5000:
        journal.append(probe(clock, n=n))
        n += 1
    for i in range(300):
        journal.append(probe(clock, n=i))
        journal.record_latency("pump-1", clock.wall() + i, 1.0, True)
    health = journal.health()
    assert health.pending_events == 100 and health.dropped_events >= 200
    assert health.pending_samples < 200 and health.dropped_samples > 0
    assert "could not be kept for the journal" in health.summary()
    assert journal.last_seq() == n + 300
    tmpfs.free()
    resume(journal, clock)
    assert journal.health().ok
    journal.close()
    stored = [r["seq"] for r in committed(path)]
    # The newest 100 are kept, in order, with the seqs they were delivered with.
    assert stored[-100:] == list(range(n + 201, n + 301))


# ---------------------------------------------------------------- read-only

def test_read_only_state_dir_at_start(tmpfs: Tmpfs, clock: FakeClock) -> None:
    path = tmpfs.path / "state" / "faultwatch.db"
    with Journal.open(path, JournalConfig(), clock) as first:
        before = [first.append(probe(clock, n=n)) for n in range(5)]
        first.save_state("breaker:pump-1", "forced_open")
    tmpfs.remount("ro")

    journal = Journal.open(path, JournalConfig(), clock, recover=True)
    # Still read: numbering continues from the file, forced breakers are restored.
    assert journal.last_seq() == 5
    assert journal.state_items("breaker:") == {"breaker:pump-1": "forced_open"}
    health = journal.health()
    assert not health.ok and health.condition == READ_ONLY and str(path) in health.reason
    watch = Watch(journal, clock)
    assert [h.condition for h in watch.health] == [READ_ONLY]  # told at once when wired
    assert [a.seq for a in watch.alerts] == [6]
    after = journal.append(probe(clock, n=5))
    assert after.seq == 7
    assert records(journal.events()) == records(before) + records(watch.alerts) + records([after])

    resume(journal, clock)
    assert not journal.health().ok
    tmpfs.remount("rw")
    resume(journal, clock)
    assert journal.health().ok and [h.ok for h in watch.health] == [False, True]
    journal.close()
    stored = committed(path)
    assert stored[:7] == records(before) + records(watch.alerts[:1]) + records([after])
    assert [r["seq"] for r in stored] == list(range(1, len(stored) + 1))


def test_read_only_and_empty_state_dir_at_start(tmpfs: Tmpfs, clock: FakeClock) -> None:
    """No journal yet and nowhere to create one: numbering starts at 1 in memory, file made later."""
    tmpfs.remount("ro")
    path = tmpfs.path / "state" / "faultwatch.db"
    journal = Journal.open(path, JournalConfig(), clock, recover=True)
    assert journal.health().condition == READ_ONLY
    assert [journal.append(probe(clock, n=n)).seq for n in range(3)] == [1, 2, 3]
    assert journal.events() and journal.state_items("") == {}
    journal.save_state("paused:pump-1", True)
    tmpfs.remount("rw")
    resume(journal, clock)
    assert journal.health().ok
    journal.close()
    assert [r["seq"] for r in committed(path)] == [1, 2, 3]
    assert (path.stat().st_mode & 0o777) == 0o600
    with Journal.open(path, JournalConfig(), clock) as again:
        assert again.load_state("paused:pump-1") is True


@pytest.fixture
def ext4(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """An 8 MB ext4 image mounted with errors=remount-ro; yields (mount point, image)."""
    for tool, package in (("mkfs.ext4", "e2fsprogs"), ("e2fsck", "e2fsprogs"), ("findmnt", "util-linux"),
                          ("mount", "util-linux")):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed ({package})")
    image = tmp_path / "disk.img"
    mnt = tmp_path / "ext4"
    mnt.mkdir()
    with open(image, "wb") as f:
        f.truncate(8 * 1024 * 1024)
    assert _run("mkfs.ext4", "-q", "-F", str(image)).returncode == 0
    done = _run("mount", "-o", "loop,errors=remount-ro", str(image), str(mnt))
    if done.returncode != 0:
        pytest.skip(f"cannot loop-mount an ext4 image here (needs root and loop devices): {done.stderr.strip()}")
    yield mnt, image
    for _ in range(3):
        if _run("umount", str(mnt)).returncode != 0:
            _run("umount", "-l", str(mnt))


def test_state_dir_turns_read_only_at_runtime(ext4: tuple[Path, Path], tmp_path: Path, clock: FakeClock) -> None:
    """The disk fails under a running journal: the kernel remounts it read-only (errors=remount-ro).

    An administrator then repairs it (fsck) and mounts it again; the journal notices by itself,
    opens the file afresh and writes what it held.
    """
    mnt, image = ext4
    device = _run("findmnt", "-no", "SOURCE", str(mnt)).stdout.strip()
    trigger = Path("/sys/fs/ext4") / Path(device).name / "trigger_fs_error"
    if not trigger.exists():
        pytest.skip(f"this kernel has no {trigger} to make ext4 fail on demand")
    path = mnt / "state" / "faultwatch.db"
    journal = Journal.open(path, JournalConfig(), clock, recover=True)
    watch = Watch(journal, clock)
    before = [journal.append(probe(clock, n=n)) for n in range(10)]
    journal.save_state("breaker:pump-1", "forced_open")
    # What the kernel does within seconds anyway; SQLite's NORMAL sync leaves it to the kernel.
    os.sync()

    trigger.write_text("faultwatch test: simulated disk failure\n")
    options = _run("findmnt", "-no", "OPTIONS", str(mnt)).stdout.strip().split(",")
    assert "ro" in options or "emergency_ro" in options  # the latter: Linux ≥ 6.x's name for it
    during = [journal.append(probe(clock, n=n)) for n in range(10, 20)]
    health = journal.health()
    assert not health.ok and health.condition in (READ_ONLY, IO_ERROR)
    assert [e.seq for e in during] == sorted(e.seq for e in during) and during[0].seq > 10
    assert watch.alert_states(RULE_JOURNAL_DEGRADED) == ["firing"]
    resume(journal, clock)
    assert not journal.health().ok

    # The repair: the failed mount goes, a checked copy of the disk comes back at the same place.
    assert _run("umount", "-l", str(mnt)).returncode == 0
    repaired = tmp_path / "repaired.img"
    shutil.copyfile(image, repaired)
    assert _run("e2fsck", "-fy", str(repaired)).returncode in (0, 1)
    assert _run("mount", "-o", "loop", str(repaired), str(mnt)).returncode == 0

    resume(journal, clock)
    assert journal.health().ok, journal.health()
    assert watch.alert_states(RULE_JOURNAL_DEGRADED) == ["firing", "resolved"]
    journal.close()
    stored = committed(path)
    assert stored[:10] == records(before)
    assert [r for r in stored if r["kind"] == "probe"] == records(before + during)
    assert [r["seq"] for r in stored] == list(range(1, len(stored) + 1))


def test_state_dir_not_writable_for_a_plain_user(clock: FakeClock) -> None:
    """Permissions, as a non-root service account meets them (root would ignore them)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run the journal as another user")
    base = Path(tempfile.mkdtemp(prefix="faultwatch-perm-", dir="/tmp"))
    try:
        os.chmod(base, 0o755)
        state = base / "state"
        state.mkdir()
        path = state / "faultwatch.db"
        with Journal.open(path, JournalConfig(), clock) as first:
            before = [first.append(probe(clock, n=n)) for n in range(3)]
        nobody = 65534
        for p in (state, path):
            os.chown(p, nobody, nobody)
        os.chmod(path, 0o400)
        os.chmod(state, 0o500)  # what a careless `chmod -R a-w` or a wrong volume mount leaves
        driver = subprocess.Popen([sys.executable, str(HERE / "journal_driver.py"), str(path), str(nobody)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert driver.stdin is not None and driver.stdout is not None

        def ask(line: str) -> Any:
            driver.stdin.write(line + "\n")  # type: ignore[union-attr]
            driver.stdin.flush()  # type: ignore[union-attr]
            return json.loads(driver.stdout.readline())  # type: ignore[union-attr]

        try:
            assert json.loads(driver.stdout.readline()) == {"ready": 3}
            health = ask("health")
            assert health["ok"] is False and health["reason"] and str(path) in health["reason"]
            assert [ask("append pump-1")["seq"] for _ in range(3)] == [4, 5, 6]
            ask("state maint:plant on")
            assert ask("events")["seqs"] == [1, 2, 3, 4, 5, 6]
            assert ask("flush") == {"written": 0} and ask("health")["ok"] is False
            os.chmod(state, 0o700)
            os.chmod(path, 0o600)
            ask("flush")
            assert ask("health")["ok"] is True
            ask("quit")
        finally:
            driver.stdin.close()
            driver.wait(timeout=30)
        assert driver.returncode == 0
        stored = committed(path)
        assert stored[:3] == records(before)
        assert [r["seq"] for r in stored] == [1, 2, 3, 4, 5, 6]
    finally:
        shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------- locked

HOLD_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
if len(sys.argv) > 2:  # a second writer on the same file: it takes the next seq for itself
    conn.execute("INSERT INTO events (seq, kind, service, wall, mono, record) VALUES (?, 'probe', 'other', 0, 0, ?)",
                 (int(sys.argv[2]), sys.argv[3]))
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
"""


def hold_lock(path: Path, *insert: str) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path), *insert],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.close()
    assert holder.wait(timeout=30) == 0


def test_journal_locked_by_another_process(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "faultwatch.db"
    journal = Journal.open(path, JournalConfig(), clock, recover=True)
    watch = Watch(journal, clock)
    before = [journal.append(probe(clock, n=n)) for n in range(5)]
    holder = hold_lock(path)
    try:
        during = [journal.append(probe(clock, n=n)) for n in range(5, 10)]
        health = journal.health()
        assert health.condition == LOCKED and "locked by another process" in health.reason
        # Reads go on under the lock (WAL readers never wait for the writer).
        assert [e.seq for e in journal.events(kinds=["probe"])] == [e.seq for e in before + during]
        assert [e.seq for e in journal.events()] == list(range(1, 12))  # and the alert
        resume(journal, clock)
        assert journal.health().condition == LOCKED
    finally:
        release(holder)
    resume(journal, clock)
    assert journal.health().ok
    assert watch.alert_states(RULE_JOURNAL_DEGRADED) == ["firing", "resolved"]
    journal.close()
    stored = committed(path)
    assert [r for r in stored if r["kind"] == "probe"] == records(before + during)
    assert [r["seq"] for r in stored] == list(range(1, len(stored) + 1))


def test_write_back_goes_in_chunks_one_per_flush(tmp_path: Path, clock: FakeClock,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Many held events are written back a chunk per flush (one engine tick each), so no single
    call stalls the loop long; events appended meanwhile queue behind, and the order holds."""
    monkeypatch.setattr("core.journal._WRITE_BACK_CHUNK", 4)
    path = tmp_path / "faultwatch.db"
    journal = Journal.open(path, JournalConfig(), clock, recover=True)
    holder = hold_lock(path)
    try:
        shown = [journal.append(probe(clock, n=n)) for n in range(10)]
    finally:
        release(holder)
    assert journal.health().pending_events == 10
    clock.advance_sync(60.0)
    journal.flush()
    assert not journal.health().ok and journal.health().pending_events == 6
    shown.append(journal.append(probe(clock, n=10)))  # still queued behind the held ones
    journal.flush()  # no waiting between chunks: the next tick takes the next one
    assert journal.health().pending_events == 3
    journal.flush()
    assert journal.health().ok
    shown.append(journal.append(probe(clock, n=11)))  # written directly again
    journal.close()
    assert [r for r in committed(path)] == records(shown)


def test_a_second_writer_never_makes_seqs_collide(tmp_path: Path, clock: FakeClock,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """Another process takes the lock *and* the next seq: ours are stored after it, with a warning."""
    path = tmp_path / "faultwatch.db"
    journal = Journal.open(path, JournalConfig(), clock, recover=True)
    journal.append(probe(clock))
    other = dataclasses.replace(probe(clock, service="other"), seq=2)
    holder = hold_lock(path, "2", json.dumps(other.to_record()))
    try:
        assert journal.append(probe(clock, n=1)).seq == 2  # delivered as 2; the file's 2 is not ours yet
    finally:
        release(holder)
    with caplog.at_level(logging.WARNING, logger="core.journal"):
        resume(journal, clock)
    assert journal.health().ok
    assert any("taken by another writer" in r.getMessage() for r in caplog.records)
    assert journal.append(probe(clock, n=2)).seq == 4
    journal.close()
    assert [(r["seq"], r["service"]) for r in committed(path)] == [
        (1, "pump-1"), (2, "other"), (3, "pump-1"), (4, "pump-1")]


# ---------------------------------------------------------------- unreadable at start

def _real_journal(path: Path, clock: FakeClock) -> list[Event]:
    with Journal.open(path, JournalConfig(), clock) as j:
        stored = []
        for n in range(400):
            stored.append(j.append(probe(clock, service=f"svc-{n % 9}", n=n)))
            j.record_latency(f"svc-{n % 9}", clock.wall() + n, float(n), True)
        j.save_state("breaker:svc-1", "forced_open")
    return stored


@pytest.mark.parametrize("damage", ["truncated", "garbage", "header zeroed"])
def test_unreadable_journal_is_kept_aside_and_a_new_one_started(
        tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture, damage: str) -> None:
    path = tmp_path / "faultwatch.db"
    before = _real_journal(path, clock)
    data = path.read_bytes()
    assert len(data) > 64 * 1024
    if damage == "truncated":
        bad = data[: len(data) // 2]
    elif damage == "garbage":
        bad = os.urandom(len(data))
    else:
        bad = b"\0" * 100 + data[100:]
    path.write_bytes(bad)

    with caplog.at_level(logging.WARNING, logger="core.journal"):
        journal = Journal.open(path, JournalConfig(), clock, recover=True)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0] and "started a new journal" in warnings[0]
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("faultwatch.db.corrupt-")]
    assert len(kept) == 1 and kept[0].read_bytes() == bad  # kept byte for byte
    assert str(kept[0]) in warnings[0]

    if damage == "truncated":
        # What SQLite can still read of the front half is carried over: the saved decisions, the
        # events up to the first lost page, and the last seq, so numbering does not start over.
        assert "carried over" in warnings[0] and "after seq 400" in warnings[0]
        assert journal.state_items("") == {"breaker:svc-1": "forced_open"}
        carried = records(journal.events(limit=None))
        assert 0 < len(carried) < 400 and carried == records(before[:len(carried)])
        first_new = 401
    else:
        assert journal.last_seq() == 0 and journal.state_items("") == {}
        carried, first_new = [], 1

    watch = Watch(journal, clock)
    assert journal.health().ok and journal.health().moved_aside == str(kept[0])
    assert watch.alert_states(RULE_JOURNAL_REPLACED) == ["firing", "resolved"]
    assert str(kept[0]) in watch.alerts[0].message
    assert [a.seq for a in watch.alerts] == [first_new, first_new + 1]
    assert journal.append(probe(clock)).seq == first_new + 2  # after the notice's two alert events
    journal.close()
    assert [r["seq"] for r in committed(path)] == [r["seq"] for r in carried] + [
        first_new, first_new + 1, first_new + 2]


def test_unreadable_journal_in_a_read_only_dir_waits_then_is_replaced(tmpfs: Tmpfs, clock: FakeClock) -> None:
    path = tmpfs.path / "faultwatch.db"
    path.write_bytes(b"not a database at all\n" * 500)
    tmpfs.remount("ro")
    journal = Journal.open(path, JournalConfig(), clock, recover=True)
    health = journal.health()
    assert health.condition == CORRUPT and "cannot move" in health.reason
    assert [journal.append(probe(clock, n=n)).seq for n in range(2)] == [1, 2]
    tmpfs.remount("rw")
    resume(journal, clock)
    assert journal.health().ok
    kept = [p for p in tmpfs.path.iterdir() if p.name.startswith("faultwatch.db.corrupt-")]
    assert len(kept) == 1 and kept[0].read_bytes().startswith(b"not a database")
    journal.close()
    assert [r["seq"] for r in committed(path)] == [1, 2]


# ---------------------------------------------------------------- the engine on a full disk
#
# The real engine checks a simulated device on loopback while its state directory, a 1 MB tmpfs,
# fills up and is freed again; the journal's health listener is wired as the engine is to wire it.

FAST = """
[fault_detection]
check_interval_seconds = 0.1
timeout_seconds = 0.5
max_failures = 2
jitter_fraction = 0.0
[circuit_breaker]
failure_threshold = 2
success_threshold = 2
timeout_seconds = 0.6
[recovery]
restart_base_delay_seconds = 0.2
restart_max_delay_seconds = 1.0
verify_checks = 2
verify_timeout_seconds = 5
[api]
enabled = false
"""


async def wait_for(cond: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """A bounded poll on observable engine state (as in test_engine.py), never a guessed sleep."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_engine_keeps_monitoring_on_a_full_disk(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fs = Tmpfs(tmp_path / "state", "1m")  # skips without root
    try:
        async with SimServer([DeviceSpec("d1", reboot_s=0.3)]) as server:
            base = server.base_url("d1")
            config = parse_config(FAST + f'[[services]]\nid = "d1"\nendpoint = "{base}"\n'
                                  f'restart = {{ http = {{ url = "{base}/restart" }} }}\n', label="test.toml")
            engine = open_engine(config, state_dir=str(fs.path))  # wires JournalAlerts
            delivered: list[Event] = []
            engine.listeners.append(delivered.append)
            await engine.start()
            try:
                await wait_for(lambda: engine.snapshots()["d1"].status is ServiceStatus.HEALTHY, what="healthy")
                with caplog.at_level(logging.WARNING):
                    fs.fill()
                    # SQLite may have room left in its WAL for a moment; the samples flushed every
                    # tick use it up.
                    await wait_for(lambda: not engine.journal.health().ok, what="journal degraded")
                    server.device("d1").set_behaviour("down")
                    await wait_for(lambda: any(e.outcome is RecoveryOutcome.SUCCEEDED
                                               for e in delivered if isinstance(e, RecoveryEvent)),
                                   what="a verified restart while the disk is full")
                    health = engine.journal.health()
                    assert not health.ok and health.condition == DISK_FULL
                    assert any(a.rule == RULE_JOURNAL_DEGRADED and a.active for a in engine.alert_manager.alerts())
                    fs.free()
                    await wait_for(lambda: engine.journal.health().ok, what="journal writable again")
                    await wait_for(lambda: not any(a.rule == RULE_JOURNAL_DEGRADED and a.active
                                                   for a in engine.alert_manager.alerts()), what="alert resolved")
            finally:
                await engine.stop()
        # No exception reached the engine's publish (it would log "journal append failed").
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        seqs = [e.seq for e in delivered]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        assert any(isinstance(e, BreakerEvent) for e in delivered)
        assert [e.state for e in delivered if isinstance(e, AlertEvent) and e.rule == RULE_JOURNAL_DEGRADED] == [
            "firing", "resolved"]
        with Journal.open(fs.path / "faultwatch.db", config.journal, engine.clock) as journal:
            stored = journal.events(limit=None)
        # Everything delivered is on disk, as delivered (the full-disk stretch included).
        assert [e.to_record() for e in stored if e.seq >= seqs[0]] == [e.to_record() for e in delivered]
    finally:
        fs.close()


def test_file_found_corrupt_while_running_is_replaced(tmp_path: Path, clock: FakeClock,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """A page goes bad under a running journal (here: the samples table's root, overwritten while
    closed, so that opening does not notice). The next write meets it; the retry keeps the file
    aside, starts a new one with the saved decisions carried over, and writes what was held."""
    path = tmp_path / "faultwatch.db"
    with Journal.open(path, JournalConfig(), clock) as first:
        before = [first.append(probe(clock, n=n)) for n in range(3)]
        first.record_latency("pump-1", clock.wall(), 1.0, True)
        first.save_state("breaker:pump-1", "forced_open")
    conn = sqlite3.connect(path)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'samples'").fetchone()[0]
    conn.close()
    with open(path, "r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xa5" * page_size)

    journal = Journal.open(path, JournalConfig(), clock, recover=True)
    assert journal.health().ok and journal.last_seq() == 3
    journal.record_latency("pump-1", clock.wall() + 1, 2.0, True)
    assert journal.flush() == 0
    assert journal.health().condition == CORRUPT
    held = journal.append(probe(clock, n=3))
    assert held.seq == 4
    with caplog.at_level(logging.WARNING, logger="core.journal"):
        resume(journal, clock)
    assert journal.health().ok
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("faultwatch.db.corrupt-")
            and not p.name.endswith(("-wal", "-shm"))]
    assert len(kept) == 1 and journal.health().moved_aside == str(kept[0])
    assert any("kept it as" in r.getMessage() for r in caplog.records)
    journal.close()
    assert [r["seq"] for r in committed(path)] == [4]  # numbering never starts over
    assert [r["seq"] for r in committed(kept[0])] == [e.seq for e in before]  # the old rows, kept
    with Journal.open(path, JournalConfig(), clock) as again:
        assert again.state_items("") == {"breaker:pump-1": "forced_open"}
        assert again.latency("pump-1", 0) == [(WALL0 + 1, 2.0)]
