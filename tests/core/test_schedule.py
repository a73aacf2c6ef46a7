"""Scheduled maintenance: windows open and close on time in their own zone, across midnight and DST."""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from core.clock import FakeClock
from core.config import ConfigError, parse_config
from core.schedule import MaintenanceSchedule, MaintenanceWindowConfig, ScheduleTracker, utc

BERLIN = ZoneInfo("Europe/Berlin")


def local(wall: float, zone: str = "Europe/Berlin") -> str:
    return datetime.fromtimestamp(wall, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


def nightly(**kw: object) -> MaintenanceWindowConfig:
    base: dict[str, object] = dict(name="nightly", groups=("line-1",), start="23:00", duration_minutes=120,
                                   repeat="daily", time_zone="Europe/Berlin")
    base.update(kw)
    return MaintenanceWindowConfig(**base)  # type: ignore[arg-type]


async def run_tracker(clock: FakeClock, tracker: ScheduleTracker, log: list[tuple[str, str, float]],
                      stop: asyncio.Event) -> None:
    """What the engine does: apply changes, then sleep on its clock until the next change."""
    while not stop.is_set():
        change = tracker.update(clock.wall())
        log.extend(("start", w.name, clock.wall()) for w in change.started)
        log.extend(("end", w.name, clock.wall()) for w in change.ended)
        nxt = tracker.schedule.next_change(clock.wall())
        if nxt is None:
            return
        await clock.sleep(nxt - clock.wall())


def test_window_crossing_midnight_in_berlin_starts_and_ends_on_time_on_a_fake_clock() -> None:
    async def main() -> list[tuple[str, str, float]]:
        # 2026-12-01 20:00 UTC = 21:00 in Berlin (winter, UTC+1)
        clock = FakeClock(start=0.0, start_wall=utc(2026, 12, 1, 20, 0))
        tracker = ScheduleTracker(MaintenanceSchedule([nightly()]))
        log: list[tuple[str, str, float]] = []
        stop = asyncio.Event()
        task = asyncio.create_task(run_tracker(clock, tracker, log, stop))
        await clock.advance(1.5 * 3600)  # 22:30 Berlin: not yet
        assert log == []
        assert tracker.covers("plc-1", "line-1") == []
        await clock.advance(0.5 * 3600)  # 23:00 Berlin
        assert log == [("start", "nightly", utc(2026, 12, 1, 22, 0))]
        assert tracker.covers("plc-1", "line-1") == ["nightly"]
        assert tracker.covers("plc-1", "line-2") == []
        await clock.advance(2 * 3600 - 1)  # one second before 01:00 Berlin, the next day
        assert len(log) == 1
        await clock.advance(1)
        assert log[-1] == ("end", "nightly", utc(2026, 12, 2, 0, 0))
        await clock.advance(22 * 3600)  # the next night's 23:00
        assert log[-1] == ("start", "nightly", utc(2026, 12, 2, 22, 0))
        stop.set()
        await clock.advance(2 * 3600)
        await asyncio.wait_for(task, 1)
        return log

    log = asyncio.run(main())
    assert [local(w) for _, _, w in log] == ["2026-12-01 23:00 CET", "2026-12-02 01:00 CET",
                                             "2026-12-02 23:00 CET"]


def test_dst_spring_forward_night_keeps_local_times_and_real_durations() -> None:
    # Europe/Berlin went to summer time on 2026-03-29 at 02:00 (clocks jump to 03:00).
    sched = MaintenanceSchedule([nightly(duration_minutes=180)])
    starts, ends = [], []
    t = utc(2026, 3, 27, 12, 0)
    for _ in range(6):
        t_next = sched.next_change(t)
        assert t_next is not None
        (starts if sched.active_windows(t_next) else ends).append(t_next)
        t = t_next
    assert [local(s) for s in starts] == ["2026-03-27 23:00 CET", "2026-03-28 23:00 CET", "2026-03-29 23:00 CEST"]
    # Three real hours: the night the clocks jump, the window ends at 03:00 CEST, one local hour "early".
    assert [local(e) for e in ends] == ["2026-03-28 02:00 CET", "2026-03-29 03:00 CEST", "2026-03-30 02:00 CEST"]
    assert [e - s for s, e in zip(starts, ends)] == [3 * 3600.0] * 3


def test_start_in_the_spring_gap_opens_at_the_first_real_instant_after_it() -> None:
    sched = MaintenanceSchedule([nightly(start="02:30", duration_minutes=30)])
    opened = sched.next_change(utc(2026, 3, 28, 12, 0))
    assert opened is not None and local(opened) == "2026-03-29 03:30 CEST"
    assert sched.active_windows(opened) and not sched.active_windows(opened - 1)


def test_start_in_the_autumn_repeat_opens_once_at_the_first_of_the_two() -> None:
    # 2026-10-25: 03:00 CEST goes back to 02:00 CET, so 02:30 happens twice.
    sched = MaintenanceSchedule([nightly(start="02:30", duration_minutes=20)])
    opened = sched.next_change(utc(2026, 10, 24, 12, 0))
    assert opened is not None and local(opened) == "2026-10-25 02:30 CEST"
    closed = sched.next_change(opened)
    assert closed == opened + 20 * 60
    again = sched.next_change(closed)
    assert again is not None and local(again) == "2026-10-26 02:30 CET"


def test_weekly_on_given_days_in_new_york() -> None:
    w = MaintenanceWindowConfig(name="weekend", tags=("cnc",), start="22:00", duration_minutes=60,
                                repeat="weekly", days=("fri", "sun"), time_zone="America/New_York")
    sched = MaintenanceSchedule([w])
    t = utc(2026, 12, 2, 0, 0)  # a Tuesday evening in New York
    opens = []
    for _ in range(4):
        nxt = sched.next_change(t)
        assert nxt is not None
        if sched.active_windows(nxt):
            opens.append(local(nxt, "America/New_York"))
        t = nxt
    assert opens == ["2026-12-04 22:00 EST", "2026-12-06 22:00 EST"]
    assert sched.active_windows(utc(2026, 12, 5, 3, 30))[0].covers("x", "g", ("cnc",))


def test_cron_windows_in_tokyo_and_one_off_windows() -> None:
    cron = MaintenanceWindowConfig(name="patch", services=("plc-1",), repeat="cron", cron="30 1 * * 1-5",
                                   duration_minutes=45, time_zone="Asia/Tokyo")
    once = MaintenanceWindowConfig(name="swap-psu", groups=("rack-a",), start="2026-12-05 09:00",
                                   duration_minutes=90, time_zone="UTC")
    sched = MaintenanceSchedule([cron, once])
    # Friday 2026-12-04 01:30 JST = Thursday 16:30 UTC
    assert [w.name for w in sched.active_windows(utc(2026, 12, 3, 16, 30))] == ["patch"]
    assert sched.active_windows(utc(2026, 12, 3, 17, 15)) == []
    assert sched.next_change(utc(2026, 12, 3, 16, 40)) == utc(2026, 12, 3, 17, 15)
    # Saturday and Sunday have no cron start; the one-off opens on Saturday 09:00 UTC.
    assert sched.next_change(utc(2026, 12, 4, 17, 0)) == utc(2026, 12, 5, 9, 0)
    assert [w.name for w in sched.active_windows(utc(2026, 12, 5, 10, 0))] == ["swap-psu"]
    assert sched.next_change(utc(2026, 12, 5, 10, 0)) == utc(2026, 12, 5, 10, 30)
    # After the one-off, only cron starts remain (Monday 01:30 JST = Sunday 16:30 UTC).
    assert sched.next_change(utc(2026, 12, 5, 10, 30)) == utc(2026, 12, 6, 16, 30)
    upcoming = sched.upcoming(utc(2026, 12, 4, 17, 0), horizon_s=3 * 86400)
    assert [w.name for w in upcoming] == ["swap-psu", "patch"]


def test_a_repeat_with_a_first_day_does_not_open_before_it() -> None:
    sched = MaintenanceSchedule([nightly(start="2026-12-10 23:00")])
    assert sched.active_windows(utc(2026, 12, 5, 22, 30)) == []
    assert sched.next_change(utc(2026, 12, 5, 12, 0)) == utc(2026, 12, 10, 22, 0)
    assert sched.active_windows(utc(2026, 12, 11, 22, 30))


@pytest.mark.parametrize(("table", "error"), [
    ('groups = ["a"]\nstart = "23:00"', "maintenance[0].start: '23:00' has no date"),
    ('groups = ["a"]\nstart = "23:00"\nrepeat = "daily"\ntime_zone = "Europe/Berlln"',
     "maintenance[0].time_zone: 'Europe/Berlln' is not a known IANA time zone"),
    ('groups = ["a"]\nstart = "25:00"\nrepeat = "daily"', "maintenance[0].start: '25:00' is not a time of day"),
    ('groups = ["a"]\nrepeat = "weekly"\nstart = "22:00"', "maintenance[0].days: repeat = \"weekly\" needs"),
    ('groups = ["a"]\nrepeat = "weekly"\nstart = "22:00"\ndays = ["mon", "funday"]',
     "maintenance[0].days: 'funday' is not one of mon tue"),
    ('groups = ["a"]\nrepeat = "cron"\ncron = "61 * * * *"', "maintenance[0].cron: '61 * * * *' is not"),
    ('start = "2026-12-01 10:00"', "maintenance[0].services: a window must cover"),
    ('groups = ["a"]\nstart = "22:00"\nrepeat = "daily"\nduration_minutes = 1500',
     "maintenance[0].duration_minutes: 1500 is longer than the daily repeat"),
    ('groups = ["a"]\nstart = "2026-02-30 10:00"', "maintenance[0].start: '2026-02-30 10:00' is not a date"),
])
def test_bad_windows_are_refused_in_one_line(table: str, error: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(f"[[maintenance]]\n{table}\n", label="site.toml")
    assert str(err.value).startswith(f"site.toml: {error}"), str(err.value)
    assert "\n" not in str(err.value)


def test_windows_load_from_the_config() -> None:
    config = parse_config('[[maintenance]]\nname = "nightly"\ngroups = ["line-1"]\nstart = "23:00"\n'
                          'repeat = "daily"\nduration_minutes = 120\ntime_zone = "Europe/Berlin"\n')
    assert config.maintenance == (nightly(),)


def test_tracker_answers_which_windows_cover_a_service() -> None:
    tracker = ScheduleTracker(MaintenanceSchedule([
        nightly(),
        MaintenanceWindowConfig(name="cams", tags=("vision",), start="2026-12-01 22:30", duration_minutes=60),
    ]))
    tracker.update(utc(2026, 12, 1, 22, 45))
    assert [w.name for w in tracker.covering("cam-1", "line-2", ("vision",))] == ["cams"]
    assert tracker.covers("plc-1", "line-1", ("vision",)) == ["nightly", "cams"]
    assert tracker.group_open("line-1") and not tracker.group_open("line-2")
    assert tracker.covering("x", "line-9") == []
