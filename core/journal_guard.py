"""Journal health: why the journal cannot write, when to try again, and the alert that says so.

The journal (core/journal.py) keeps the console running when its disk misbehaves — full, read-only,
locked by another process, failing — by numbering and buffering in memory. This module owns the
small pure parts of that: turning an SQLite or OS error into a one-line reason an operator can act
on, the retry schedule (core/backoff.py, on monotonic time, so a wall-clock step cannot hasten or
stall it), the health value the journal reports, and the one function the engine calls to turn a
health change into an alert.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from core.backoff import backoff_delay

# The alert rule the engine raises while journaling is degraded. Engine-wide: no service.
RULE_JOURNAL_DEGRADED = "journal_degraded"
# A one-off notice: an unreadable journal was moved aside at start and a new one begun.
RULE_JOURNAL_REPLACED = "journal_replaced"

# Retries while degraded: 1 s, 2 s, 4 s … capped at 30 s. Short enough that writing resumes soon
# after space returns, long enough that a dead disk costs one failed transaction per half minute.
RETRY_BASE_S = 1.0
RETRY_MAX_S = 30.0

# sqlite3 primary result codes (the extended code's low byte).
_SQLITE_PERM = 3
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_SQLITE_AUTH = 23
_SQLITE_NOTADB = 26

# What the condition is, in the words an alert uses.
DISK_FULL = "disk full"
READ_ONLY = "read-only"
LOCKED = "locked by another process"
IO_ERROR = "I/O error"
PERMISSION = "permission denied"
CANNOT_OPEN = "cannot open"
CORRUPT = "corrupt"
UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class JournalHealth:
    """Whether the journal is writing, and if not, why and what it holds in memory meanwhile.

    Attributes:
        ok: every event and state change so far is committed to the file (samples may be buffered
            for the next flush, as always).
        reason: one line, empty when ok: the condition, the file, SQLite's or the OS's words.
        condition: the condition alone (DISK_FULL, READ_ONLY, LOCKED …), empty when ok.
        since_wall: wall time the journal became degraded (for display only), None when ok.
        pending_events: events numbered and delivered but not yet on disk.
        pending_state: operator decisions (forced breakers, maintenance …) not yet on disk.
        pending_samples: latency samples waiting for a flush.
        dropped_events: events that were delivered but will never reach the file (the in-memory
            buffer is bounded); counted since the journal opened.
        dropped_samples: latency samples dropped for the same reason.
        moved_aside: where an unreadable journal found at open was moved, if one was.
    """

    ok: bool = True
    reason: str = ""
    condition: str = ""
    since_wall: float | None = None
    pending_events: int = 0
    pending_state: int = 0
    pending_samples: int = 0
    dropped_events: int = 0
    dropped_samples: int = 0
    moved_aside: str | None = None

    def summary(self) -> str:
        """One line for an alert or a log: the reason and what is held in memory."""
        if self.ok:
            return "journal writing normally"
        lost = ""
        if self.dropped_events or self.dropped_samples:
            lost = (f"; {self.dropped_events} events and {self.dropped_samples} samples could not be"
                    " kept for the journal")
        return (f"journaling degraded: {self.reason}; events still stream and are held in memory"
                f" until it can write again (retrying){lost}")


def condition_of(exc: BaseException, path: Path | None = None) -> str:
    """The condition an SQLite or OS error stands for (DISK_FULL, READ_ONLY …)."""
    if isinstance(exc, OSError):
        by_errno = {errno.ENOSPC: DISK_FULL, errno.EDQUOT: DISK_FULL, errno.EROFS: READ_ONLY,
                    errno.EACCES: PERMISSION, errno.EPERM: PERMISSION, errno.EIO: IO_ERROR}
        return by_errno.get(exc.errno or 0, UNAVAILABLE)
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    by_code = {_SQLITE_FULL: DISK_FULL, _SQLITE_READONLY: READ_ONLY, _SQLITE_BUSY: LOCKED,
               _SQLITE_LOCKED: LOCKED, _SQLITE_PERM: PERMISSION, _SQLITE_AUTH: PERMISSION,
               _SQLITE_CANTOPEN: CANNOT_OPEN, _SQLITE_CORRUPT: CORRUPT, _SQLITE_NOTADB: CORRUPT,
               _SQLITE_IOERR: IO_ERROR}
    condition = by_code.get(primary or -1, UNAVAILABLE)
    if condition in (IO_ERROR, CANNOT_OPEN, UNAVAILABLE) and path is not None:
        # SQLite reports some full or read-only disks as a plain I/O error (a failed WAL write);
        # the filesystem itself can say which it is.
        condition = _filesystem_condition(path) or condition
    return condition


def _filesystem_condition(path: Path) -> str | None:
    directory = path.parent
    try:
        st = os.statvfs(directory)
    except OSError:
        return None
    if st.f_flag & os.ST_RDONLY:
        return READ_ONLY
    if st.f_bavail == 0:
        return DISK_FULL
    return None


def describe(exc: BaseException, path: Path) -> tuple[str, str]:
    """(condition, one-line reason) for an error met while opening or writing the journal at `path`."""
    condition = condition_of(exc, path)
    words = " ".join(str(exc).split()) or type(exc).__name__
    return condition, f"{condition}: {path} ({words})"


class RetrySchedule:
    """When the degraded journal tries the disk again: exponential backoff on monotonic time.

    Monotonic only: an NTP step of the wall clock neither fires a retry early nor postpones it.
    """

    def __init__(self, base_s: float = RETRY_BASE_S, max_s: float = RETRY_MAX_S) -> None:
        self._base = base_s
        self._max = max_s
        self._failures = 0
        self._next: float | None = None

    @property
    def failures(self) -> int:
        return self._failures

    def due(self, now_mono: float) -> bool:
        return self._next is None or now_mono >= self._next

    def failed(self, now_mono: float) -> float:
        """Record a failed attempt at `now_mono`; returns the delay until the next one."""
        self._failures += 1
        delay = backoff_delay("exponential", self._failures, self._base, self._max)
        self._next = now_mono + delay
        return delay

    def reset(self) -> None:
        self._failures = 0
        self._next = None


class AlertRaiser(Protocol):
    """The two AlertManager methods the journal alert needs (core/alerts.py)."""

    def raise_alert(self, rule: str, service: str, severity: str, message: str) -> None: ...

    def resolve(self, rule: str, service: str) -> None: ...


class JournalAlerts:
    """The journal's health listener for the engine: turns health changes into alerts.

    While degraded, the engine-wide `journal_degraded` alert (critical) is raised with the reason;
    it resolves when writing resumes. A journal that was unreadable at start and moved aside gives
    one `journal_replaced` notice (warning), raised and resolved at once so it stays in the list,
    cleared, until someone acknowledges it.

    Wire it once the journal is open: `journal.set_health_listener(JournalAlerts(alert_manager))`.
    """

    def __init__(self, alerts: AlertRaiser) -> None:
        self._alerts = alerts
        self._noticed_move = False

    def __call__(self, health: JournalHealth) -> None:
        if health.moved_aside and not self._noticed_move:
            self._noticed_move = True
            self._alerts.raise_alert(
                RULE_JOURNAL_REPLACED, "", "warning",
                f"the journal was unreadable at start; it was kept as {health.moved_aside} and a new one started")
            self._alerts.resolve(RULE_JOURNAL_REPLACED, "")
        if health.ok:
            self._alerts.resolve(RULE_JOURNAL_DEGRADED, "")
        else:
            self._alerts.raise_alert(RULE_JOURNAL_DEGRADED, "", "critical", health.summary())


__all__ = [
    "CANNOT_OPEN", "CORRUPT", "DISK_FULL", "IO_ERROR", "LOCKED", "PERMISSION", "READ_ONLY",
    "RULE_JOURNAL_DEGRADED", "RULE_JOURNAL_REPLACED", "UNAVAILABLE", "AlertRaiser", "JournalAlerts",
    "JournalHealth", "RetrySchedule", "condition_of", "describe",
]
