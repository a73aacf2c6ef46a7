"""HeartbeatMonitor: misses reported once, resumes reported, deadlines exact."""

from __future__ import annotations

import pytest

from core.clock import FakeClock
from core.config import HeartbeatConfig
from core.heartbeat import HeartbeatMonitor


def make(missed_intervals: int = 3) -> tuple[HeartbeatMonitor, FakeClock]:
    clock = FakeClock()
    return HeartbeatMonitor(clock, HeartbeatConfig(missed_intervals=missed_intervals)), clock


def test_unknown_service_is_ignored() -> None:
    mon, _ = make()
    assert not mon.knows("nope")
    assert mon.beat("nope") is None
    assert mon.status("nope") == ""
    assert mon.poll() == []
    assert mon.next_deadline() is None


def test_never_beating_service_is_missed_after_grace_from_configure() -> None:
    mon, clock = make()
    mon.configure("dev", 10.0)
    assert mon.knows("dev")
    assert mon.status("dev") == "waiting"
    assert mon.next_deadline() == pytest.approx(clock.monotonic() + 30.0)
    clock.advance_sync(29.9)
    assert mon.poll() == []
    clock.advance_sync(0.1)
    events = mon.poll()
    assert len(events) == 1
    ev = events[0]
    assert (ev.service, ev.status, ev.last_beat_age_s) == ("dev", "missed", None)
    assert ev.mono == clock.monotonic() and ev.wall == clock.wall()
    assert mon.status("dev") == "missed"


def test_missed_reported_once_not_every_poll() -> None:
    mon, clock = make()
    mon.configure("dev", 1.0)
    clock.advance_sync(5)
    assert len(mon.poll()) == 1
    for _ in range(10):
        clock.advance_sync(5)
        assert mon.poll() == []
    assert mon.next_deadline() is None


def test_beats_keep_it_ok_and_resume_after_miss() -> None:
    mon, clock = make()
    mon.configure("dev", 10.0)
    for _ in range(10):
        clock.advance_sync(9)
        assert mon.beat("dev") is None
        assert mon.poll() == []
    assert mon.status("dev") == "ok"
    last = clock.monotonic()
    assert mon.next_deadline() == pytest.approx(last + 30)
    clock.advance_sync(31)
    [missed] = mon.poll()
    assert missed.status == "missed"
    assert missed.last_beat_age_s == pytest.approx(31)
    clock.advance_sync(4)
    resumed = mon.beat("dev")
    assert resumed is not None
    assert resumed.status == "resumed"
    assert resumed.last_beat_age_s == pytest.approx(35)
    assert mon.status("dev") == "ok"
    # And it can miss again, once.
    clock.advance_sync(30)
    assert [e.status for e in mon.poll()] == ["missed"]


def test_next_deadline_is_the_earliest_and_exact() -> None:
    mon, clock = make(missed_intervals=2)
    mon.configure("a", 10.0)
    mon.configure("b", 3.0)
    t0 = clock.monotonic()
    assert mon.next_deadline() == pytest.approx(t0 + 6)
    clock.advance_sync(5)
    mon.beat("b")
    assert mon.next_deadline() == pytest.approx(t0 + 11)
    clock.advance_sync(mon.next_deadline() - clock.monotonic())  # type: ignore[operator]
    assert [e.service for e in mon.poll()] == ["b"]
    assert mon.next_deadline() == pytest.approx(t0 + 20)


def test_remove_and_reconfigure() -> None:
    mon, clock = make()
    mon.configure("dev", 10.0)
    clock.advance_sync(25)
    mon.configure("dev", None)
    assert not mon.knows("dev")
    assert mon.status("dev") == ""
    clock.advance_sync(100)
    assert mon.poll() == []
    assert mon.next_deadline() is None
    # Re-added: grace starts now; no stale deadline from the earlier life fires early.
    mon.configure("dev", 10.0)
    assert mon.status("dev") == "waiting"
    clock.advance_sync(29)
    assert mon.poll() == []
    clock.advance_sync(1)
    assert len(mon.poll()) == 1


def test_changed_interval_restarts_grace_same_interval_does_not() -> None:
    mon, clock = make()
    mon.configure("dev", 10.0)
    clock.advance_sync(20)
    mon.configure("dev", 10.0)  # a reload with the same value: deadline unchanged
    clock.advance_sync(10)
    assert len(mon.poll()) == 1

    mon.configure("other", 10.0)
    clock.advance_sync(20)
    mon.configure("other", 5.0)  # changed: grace (3 x 5 s) starts now
    clock.advance_sync(14)
    assert mon.poll() == []
    clock.advance_sync(1)
    assert [e.service for e in mon.poll()] == ["other"]


def test_reconfigure_while_missed_keeps_missed_until_beat() -> None:
    mon, clock = make()
    mon.configure("dev", 10.0)
    clock.advance_sync(30)
    assert len(mon.poll()) == 1
    mon.configure("dev", 20.0)
    assert mon.status("dev") == "missed"
    ev = mon.beat("dev")
    assert ev is not None and ev.status == "resumed"


def test_set_config_changes_grace() -> None:
    mon, clock = make(missed_intervals=3)
    mon.configure("dev", 10.0)
    clock.advance_sync(15)
    mon.set_config(HeartbeatConfig(missed_intervals=1))
    assert mon.next_deadline() == pytest.approx(clock.monotonic() - 5)
    assert len(mon.poll()) == 1


def test_invalid_interval_rejected() -> None:
    mon, _ = make()
    with pytest.raises(ValueError):
        mon.configure("dev", 0.0)
    with pytest.raises(ValueError):
        mon.configure("dev", float("nan"))


def test_many_fast_beats_keep_memory_bounded() -> None:
    mon, clock = make()
    for i in range(50):
        mon.configure(f"d{i}", 10.0)
    for _ in range(200):
        clock.advance_sync(0.1)
        for i in range(50):
            mon.beat(f"d{i}")
    assert len(mon._heap) <= 4 * 50 + 65
    clock.advance_sync(29.9)
    assert mon.poll() == []
    clock.advance_sync(0.1)
    assert len(mon.poll()) == 50
