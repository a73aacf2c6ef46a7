"""Scheduled maintenance: `[[maintenance]]` windows, when they are open, and when that changes.

A window covers services, groups or tags; it opens at a local time in its own time zone (once, daily,
weekly on given days, or at the times of a cron expression) and stays open for `duration_minutes` of
real time. Local times are turned into instants with zoneinfo, so a window at 23:00 Europe/Berlin
opens at 22:00 UTC in winter and 21:00 UTC in summer; a start that falls into a spring-forward gap
opens at the first instant after it (02:30 on the changeover night opens at 03:30 summer time), and a
start that happens twice in autumn opens at the first of the two.

Pure: callers pass wall time (seconds since the epoch). `MaintenanceSchedule` answers "which windows
are open now" and "when may that change next"; `ScheduleTracker` turns successive answers into
started/ended lists for the engine to apply and journal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterable, Literal, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.options import opt

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"(\d{1,2}):(\d{2})\Z")
_DATETIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})[ T](\d{1,2}):(\d{2})\Z")
_DAY_S = 86400.0


class ScheduleError(ValueError):
    """A window that cannot be scheduled; `key` names the offending setting."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


@dataclass(frozen=True, slots=True)
class MaintenanceWindowConfig:
    """One `[[maintenance]]` table."""

    name: str = opt("", "Shown in the GUI and the journal (default: maintenance-N, N from 1 in file order).")
    services: tuple[str, ...] = opt((), "Service ids the window covers.")
    groups: tuple[str, ...] = opt((), "Groups (racks, sites) the window covers.")
    tags: tuple[str, ...] = opt((), "Services with any of these tags are covered.")
    start: str = opt("", "Local start: \"YYYY-MM-DD HH:MM\" (required for repeat = \"none\"; for repeats, the "
                         "first day it may open) or \"HH:MM\" (daily, weekly).")
    duration_minutes: float = opt(60.0, "How long each occurrence lasts, in real minutes.", positive=True)
    repeat: Literal["none", "daily", "weekly", "cron"] = opt(
        "none", "Once, every day, every week on `days`, or at the start times of `cron`.")
    days: tuple[str, ...] = opt((), "repeat = \"weekly\": the days, from mon tue wed thu fri sat sun.")
    cron: str = opt("", "repeat = \"cron\": a five-field cron expression for the start times (local time).")
    time_zone: str = opt("UTC", "IANA time zone of start and cron, e.g. \"Europe/Berlin\".")


@dataclass(frozen=True, slots=True)
class ActiveWindow:
    """One occurrence of a window: its name, what it covers, and its instants (wall seconds)."""

    name: str
    services: tuple[str, ...]
    groups: tuple[str, ...]
    tags: tuple[str, ...]
    start_wall: float
    end_wall: float
    repeat: str = ""  # "once", "daily", "weekly mon fri", "cron 0 2 * * *" (for the GUI)

    def covers(self, service: str, group: str, tags: Iterable[str] = ()) -> bool:
        return (service in self.services or group in self.groups
                or any(t in self.tags for t in tags))

    def describe(self) -> str:
        """Targets in a few words, for the journal and the GUI."""
        parts = [*self.services, *(f"group {g}" for g in self.groups), *(f"tag {t}" for t in self.tags)]
        return ", ".join(parts) if parts else "nothing"


@dataclass(frozen=True, slots=True)
class _Plan:
    """A validated window in the form the arithmetic needs."""

    config: MaintenanceWindowConfig
    name: str
    zone: ZoneInfo
    first: datetime | None  # local, naive: the only start (none), or the earliest day (repeats)
    at: time | None  # daily / weekly local start time
    weekdays: frozenset[int]
    duration_s: float


def _parse_start(text: str, repeat: str) -> tuple[datetime | None, time | None]:
    text = text.strip()
    m = _DATETIME.match(text)
    if m:
        y, mo, d, h, mi = (int(g) for g in m.groups())
        try:
            local = datetime(y, mo, d, h, mi)
        except ValueError as exc:
            raise ScheduleError("start", f"{text!r} is not a date and time ({exc})") from None
        return local, local.time()
    m = _HHMM.match(text)
    if m:
        h, mi = int(m.group(1)), int(m.group(2))
        if h > 23 or mi > 59:
            raise ScheduleError("start", f"{text!r} is not a time of day")
        if repeat == "none":
            raise ScheduleError("start", f"{text!r} has no date; a one-off window needs \"YYYY-MM-DD HH:MM\"")
        return None, time(h, mi)
    if not text:
        if repeat == "cron":
            return None, None
        raise ScheduleError("start", "is required (\"YYYY-MM-DD HH:MM\" or, for daily/weekly, \"HH:MM\")")
    raise ScheduleError("start", f"{text!r} is not \"YYYY-MM-DD HH:MM\" or \"HH:MM\"")


def plan(window: MaintenanceWindowConfig, index: int = 0) -> _Plan:
    """Validate a window; ScheduleError names the key and what is wrong."""
    try:
        zone = ZoneInfo(window.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError("time_zone", f"{window.time_zone!r} is not a known IANA time zone") from None
    if not (window.services or window.groups or window.tags):
        raise ScheduleError("services", "a window must cover at least one service, group or tag")
    first, at = _parse_start(window.start, window.repeat)
    weekdays: frozenset[int] = frozenset()
    if window.repeat == "weekly":
        if not window.days:
            raise ScheduleError("days", "repeat = \"weekly\" needs at least one day")
        for day in window.days:
            if day.lower() not in DAYS:
                raise ScheduleError("days", f"{day!r} is not one of {' '.join(DAYS)}")
        weekdays = frozenset(DAYS.index(d.lower()) for d in window.days)
    elif window.days:
        raise ScheduleError("days", "only used with repeat = \"weekly\"")
    if window.repeat == "cron":
        if not window.cron:
            raise ScheduleError("cron", "repeat = \"cron\" needs a cron expression")
        from croniter import croniter  # only cron windows need it

        if not croniter.is_valid(window.cron) or len(window.cron.split()) != 5:
            raise ScheduleError("cron", f"{window.cron!r} is not a five-field cron expression")
    elif window.cron:
        raise ScheduleError("cron", "only used with repeat = \"cron\"")
    period = {"daily": _DAY_S, "weekly": 7 * _DAY_S}.get(window.repeat)
    duration_s = window.duration_minutes * 60.0
    if period is not None and duration_s > period:
        raise ScheduleError("duration_minutes", f"{window.duration_minutes:g} is longer than the "
                                                f"{window.repeat} repeat ({period / 60:g} minutes)")
    return _Plan(config=window, name=window.name or f"maintenance-{index + 1}", zone=zone, first=first,
                 at=at, weekdays=weekdays, duration_s=duration_s)


def repeat_text(window: MaintenanceWindowConfig) -> str:
    """How a window repeats, in a few words: "once", "daily", "weekly mon fri", "cron 0 2 * * *"."""
    if window.repeat == "weekly":
        return "weekly " + " ".join(d.lower() for d in sorted(window.days, key=lambda d: DAYS.index(d.lower())))
    if window.repeat == "cron":
        return f"cron {window.cron}"
    return "once" if window.repeat == "none" else window.repeat


def _instant(local: datetime, zone: ZoneInfo) -> float:
    """A naive local time → wall seconds; gap times move forward, repeated times take the first."""
    aware = local.replace(tzinfo=zone, fold=0)
    wall = aware.timestamp()
    # In a gap, fold=0 reads the time with the offset before the change, which lands after the gap:
    # 02:30 CET is 03:30 CEST. That is the first real instant at or after the intended one.
    return wall


def _latest_start(p: _Plan, now_wall: float) -> float | None:
    """The latest start instant at or before `now_wall`, or None."""
    cfg = p.config
    first_wall = _instant(p.first, p.zone) if p.first is not None else None
    if cfg.repeat == "none":
        return first_wall if first_wall is not None and first_wall <= now_wall else None
    if cfg.repeat == "cron":
        from croniter import croniter

        now_local = datetime.fromtimestamp(now_wall, p.zone)
        # croniter's get_prev is exclusive of `now`; step a hair past it so a start exactly now counts.
        it = croniter(cfg.cron, now_local + timedelta(seconds=1))
        prev = float(it.get_prev(datetime).timestamp())
        if first_wall is not None and prev < first_wall:
            return None
        return prev
    assert p.at is not None
    today = datetime.fromtimestamp(now_wall, p.zone).date()
    for back in range(0, 9):
        day = today - timedelta(days=back)
        wall = _on_day(p, day)
        if wall is not None and wall <= now_wall:
            return None if first_wall is not None and wall < first_wall else wall
    return None


def _next_start(p: _Plan, now_wall: float) -> float | None:
    """The earliest start instant strictly after `now_wall`, or None."""
    cfg = p.config
    first_wall = _instant(p.first, p.zone) if p.first is not None else None
    if cfg.repeat == "none":
        return first_wall if first_wall is not None and first_wall > now_wall else None
    if cfg.repeat == "cron":
        from croniter import croniter

        base = max(now_wall, first_wall - 1e-3) if first_wall is not None else now_wall
        it = croniter(cfg.cron, datetime.fromtimestamp(base, p.zone))
        return float(it.get_next(datetime).timestamp())
    today = datetime.fromtimestamp(now_wall, p.zone).date()
    if p.first is not None and p.first.date() > today:
        today = p.first.date()  # a repeat that begins later: search from its first day
    for ahead in range(-1, 9):
        wall = _on_day(p, today + timedelta(days=ahead))
        if wall is not None and wall > now_wall and (first_wall is None or wall >= first_wall):
            return wall
    return None


def _on_day(p: _Plan, day: date) -> float | None:
    if p.config.repeat == "weekly" and day.weekday() not in p.weekdays:
        return None
    assert p.at is not None
    return _instant(datetime.combine(day, p.at), p.zone)


class MaintenanceSchedule:
    """The configured windows; pure questions about wall time."""

    def __init__(self, windows: Sequence[MaintenanceWindowConfig]) -> None:
        self._plans = [plan(w, i) for i, w in enumerate(windows)]

    def __len__(self) -> int:
        return len(self._plans)

    def _occurrence(self, p: _Plan, start: float) -> ActiveWindow:
        cfg = p.config
        return ActiveWindow(name=p.name, services=cfg.services, groups=cfg.groups, tags=cfg.tags,
                            start_wall=start, end_wall=start + p.duration_s, repeat=repeat_text(cfg))

    def active_windows(self, now_wall: float) -> list[ActiveWindow]:
        """Windows open at `now_wall` (start inclusive, end exclusive), in file order."""
        out = []
        for p in self._plans:
            start = _latest_start(p, now_wall)
            if start is not None and now_wall < start + p.duration_s:
                out.append(self._occurrence(p, start))
        return out

    def next_change(self, now_wall: float) -> float | None:
        """The earliest instant after `now_wall` at which a window opens or closes, or None (never)."""
        times: list[float] = []
        for p in self._plans:
            start = _latest_start(p, now_wall)
            if start is not None and now_wall < start + p.duration_s:
                times.append(start + p.duration_s)
            nxt = _next_start(p, now_wall)
            if nxt is not None:
                times.append(nxt)
        return min(times) if times else None

    def upcoming(self, now_wall: float, horizon_s: float = 7 * _DAY_S) -> list[ActiveWindow]:
        """Open windows and those opening within `horizon_s`, soonest first (for the GUI)."""
        out = self.active_windows(now_wall)
        for p in self._plans:
            nxt = _next_start(p, now_wall)
            if nxt is not None and nxt - now_wall <= horizon_s:
                out.append(self._occurrence(p, nxt))
        return sorted(out, key=lambda w: w.start_wall)


@dataclass(frozen=True, slots=True)
class ScheduleChange:
    started: tuple[ActiveWindow, ...]
    ended: tuple[ActiveWindow, ...]

    def __bool__(self) -> bool:
        return bool(self.started) or bool(self.ended)


class ScheduleTracker:
    """Which occurrences are open, and which opened or closed since the last `update()`."""

    def __init__(self, schedule: MaintenanceSchedule) -> None:
        self.schedule = schedule
        self._open: dict[tuple[str, float], ActiveWindow] = {}

    @property
    def open_windows(self) -> list[ActiveWindow]:
        return list(self._open.values())

    def update(self, now_wall: float) -> ScheduleChange:
        now = {(w.name, w.start_wall): w for w in self.schedule.active_windows(now_wall)}
        started = tuple(w for k, w in now.items() if k not in self._open)
        ended = tuple(w for k, w in self._open.items() if k not in now)
        self._open = now
        return ScheduleChange(started=started, ended=ended)

    def covering(self, service: str, group: str, tags: Iterable[str] = ()) -> list[ActiveWindow]:
        """The open windows covering a service (empty: not in scheduled maintenance)."""
        tags = tuple(tags)
        return [w for w in self._open.values() if w.covers(service, group, tags)]

    def covers(self, service: str, group: str, tags: Iterable[str] = ()) -> list[str]:
        """Names of the open windows covering a service."""
        return [w.name for w in self.covering(service, group, tags)]

    def group_open(self, group: str) -> bool:
        """Whether an open window names this group itself."""
        return any(group in w.groups for w in self._open.values())


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    """Wall seconds of a UTC date and time (for tests and examples)."""
    return datetime(year, month, day, hour, minute, tzinfo=timezone.utc).timestamp()


__all__ = ["ActiveWindow", "DAYS", "MaintenanceSchedule", "MaintenanceWindowConfig", "ScheduleChange",
           "ScheduleError", "ScheduleTracker", "plan"]
