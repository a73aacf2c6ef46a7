"""The Maintenance panel: open and coming scheduled windows, their devices and countdowns, one request
at a time on the bridge's tick, the detail panel saying when a device is in or near a window
(pytest-qt, offscreen, FakeEngine on a standing clock)."""

from __future__ import annotations

import asyncio
import re

from core.maintenance_board import MaintenanceWindowView
from fake_engine import FakeEngine
from gui.main_window import MainWindow
from gui.maintenance_view import FETCH_INTERVAL_S, MaintenanceView


def windows(now: float) -> list[MaintenanceWindowView]:
    return [
        MaintenanceWindowView("nightly", "group rack-b", ("chiller", "comp", "pump-1", "pump-2"),
                              now - 60, now + 240, "daily", True),
        MaintenanceWindowView("cameras", "cam-1, cam-2", ("cam-1", "cam-2"), now + 2 * 3600, now + 2 * 3600 + 1800,
                              "weekly mon fri", False),
    ]


def make_window(qtbot, engine: FakeEngine, qsettings) -> MainWindow:
    w = MainWindow(engine, qsettings, now=engine.now, tray=False, sound=False)
    qtbot.addWidget(w)
    w.bridge.poll()
    return w


def test_panel_lists_open_then_coming_windows_and_the_detail_panel_says_so(qtbot, qloop, qsettings):
    engine = FakeEngine()
    engine.maintenance_board = windows(engine.wall)
    w = make_window(qtbot, engine, qsettings)
    try:
        view = w.findChild(MaintenanceView, "maintenance_view")
        assert view is w.maintenance_view and not view.isVisibleTo(w)  # nothing read yet: quiet
        qloop.run(view.refresh())
        assert view.isVisibleTo(w)
        assert view.summary.text() == "1 open · 1 next"
        first, second = view.rows()
        assert re.fullmatch(r"IN MAINTENANCE · nightly\nends \d\d:\d\d \(in 4 min\)\n"
                            r"Chiller, Compressor, Pump 1 and 1 more", first), first
        assert re.fullmatch(r"NEXT · cameras\nstarts (\w{3} )?\d\d:\d\d \(in 2 h\) · 30 min · weekly mon fri\n"
                            r"Camera 1, Camera 2", second), second
        assert "Devices: Chiller, Compressor, Pump 1, Pump 2" in view.list.item(0).toolTip()
        w.select_services(["pump-2"])
        assert w.detail.text("scheduled").startswith("IN nightly until ")
        assert w.detail.fields["scheduled"].styleSheet() != ""  # magenta: suppressed on purpose
        w.select_services(["cam-1"])
        assert re.match(r"cameras starts in 2 h \(.*, 30 min, weekly mon fri\)", w.detail.text("scheduled"))
        w.select_services(["plc-1"])
        assert w.detail.text("scheduled") == "none this week"

        # Time passes (the fake clock): the open window ends, the coming one opens, without a new fetch.
        engine.wall += 2 * 3600 + 5
        view.tick()
        assert [r.split("\n")[0] for r in view.rows()] == ["IN MAINTENANCE · cameras"]
        assert view.summary.text() == "1 open"
        engine.wall += 1800
        view.tick()
        assert view.rows() == [] and not view.isVisibleTo(w)
    finally:
        w.shutdown()


def test_one_request_at_a_time_on_the_tick_and_a_failure_is_said_not_hidden(qtbot, qloop, qsettings):
    engine = FakeEngine()
    gate = asyncio.Event()
    calls: list[float] = []

    async def slow(horizon_s: float) -> list[MaintenanceWindowView]:
        calls.append(horizon_s)
        await gate.wait()
        return windows(engine.wall)

    engine.scheduled_maintenance = slow  # type: ignore[method-assign]
    w = make_window(qtbot, engine, qsettings)
    view = w.maintenance_view

    async def drive() -> None:
        view.tick()
        for _ in range(3):  # the engine is slow: ticks while the request is out ask nothing more
            engine.wall += FETCH_INTERVAL_S + 1
            view.tick()
            await asyncio.sleep(0)
        assert len(calls) == 1
        gate.set()
        await asyncio.sleep(0.01)
        assert view.summary.text() == "1 open · 1 next"
        view.tick()  # just fetched: not due yet
        assert len(calls) == 1
        engine.wall += FETCH_INTERVAL_S
        view.tick()
        await asyncio.sleep(0.01)
        assert len(calls) == 2

    try:
        qloop.run(drive())
    finally:
        w.shutdown()

    # An attached engine that cannot answer: what was read stays, and the panel says it is not current.
    engine2 = FakeEngine()
    engine2.maintenance_board = windows(engine2.wall)
    w2 = make_window(qtbot, engine2, qsettings)
    try:
        view2 = w2.maintenance_view
        qloop.run(view2.refresh())
        engine2.maintenance_error = "site-a: HTTP 502 for /api/maintenance"
        qloop.run(view2.refresh())
        assert view2.summary.text() == "1 open · 1 next · not available"
        assert "HTTP 502" in view2.summary.toolTip()
        assert len(view2.rows()) == 2
        # A composite that read some engines only: their windows show, the others are named.
        engine2.maintenance_error = ""
        engine2.maintenance_unavailable = {"site-b": "site-b: HTTP 404 for /api/maintenance"}  # type: ignore[attr-defined]
        qloop.run(view2.refresh())
        assert view2.summary.text() == "1 open · 1 next · incomplete"
        assert "site-b: HTTP 404" in view2.summary.toolTip()
    finally:
        w2.shutdown()


def test_shutdown_cancels_a_pending_request(qtbot, qloop, qsettings):
    engine = FakeEngine()
    never = asyncio.Event()

    async def hang(horizon_s: float) -> list[MaintenanceWindowView]:
        await never.wait()
        return []

    engine.scheduled_maintenance = hang  # type: ignore[method-assign]
    w = make_window(qtbot, engine, qsettings)

    async def drive() -> asyncio.Future[object] | None:
        w.maintenance_view.tick()
        await asyncio.sleep(0)
        return w.maintenance_view._pending

    pending = qloop.run(drive())
    assert pending is not None and pending in w.tasks  # owned by the window
    w.shutdown()
    qloop.settle(0.01)
    assert pending.cancelled()
