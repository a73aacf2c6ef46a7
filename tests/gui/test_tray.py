"""gui/tray: worst-state icon (shape and colour), counts in the tooltip, one notice per new critical
alert, and a click on the notice opens the window on that alert (offscreen: the logic, not the OS tray)."""

from __future__ import annotations

import dataclasses

import pytest
from PySide6.QtGui import QColor

from core.events import BreakerState, ServiceStatus
from core.snapshot import AlertView
from fake_engine import FakeEngine, make_breaker, make_snapshot
from gui import palette
from gui.main_window import MainWindow
from gui.tray import ICON_PX, TrayNotifier, fleet_tooltip, state_icon, worst_indicator


def rack(**changes: dict) -> dict:
    snaps = {f"d{i}": make_snapshot(f"d{i}", f"Device {i}", "rack-a") for i in range(6)}
    for sid, kw in changes.items():
        snaps[sid] = make_snapshot(sid, f"Device {sid[1:]}", "rack-a", **kw)
    return snaps


def alert(aid: str, service: str = "d1", severity: str = "critical", *, count: int = 1,
          acknowledged: bool = False, active: bool = True) -> AlertView:
    return AlertView(id=aid, rule="unhealthy", service=service, group="rack-a", severity=severity,
                     message="unhealthy for 30 s", active=active, acknowledged=acknowledged,
                     silenced_until_wall=None, first_wall=0.0, last_wall=0.0, count=count)


@pytest.mark.parametrize(("changes", "role", "shape"), [
    ({}, "normal", "circle"),
    ({"d2": {"maintenance": True}}, "suppressed", "lock"),
    ({"d2": {"maintenance": True}, "d4": {"status": ServiceStatus.DEGRADED}}, "warning", "triangle"),
    ({"d4": {"status": ServiceStatus.DEGRADED},
      "d5": {"status": ServiceStatus.UNHEALTHY, "failed": True}}, "critical", "triangle"),
    ({"d3": {"breaker": make_breaker(BreakerState.OPEN)}}, "critical", "circle"),
])
def test_icon_shows_the_worst_state_as_shape_and_colour(qtbot, changes, role, shape):
    tray = TrayNotifier(show=False)
    tray.update_snapshots(rack(**changes))
    assert (tray.indicator.role, tray.indicator.shape) == (role, shape)
    img = tray.icon.icon().pixmap(ICON_PX, ICON_PX).toImage()
    centre = img.pixelColor(ICON_PX // 2, ICON_PX // 2 + 6)
    want = QColor(palette.colour(palette.DARK, role))
    assert abs(centre.red() - want.red()) < 8 and abs(centre.green() - want.green()) < 8


def test_shapes_differ_in_monochrome():
    """A triangle and a circle of the same colour still give different icons."""
    a = state_icon(palette.Indicator("critical", "triangle", ""), palette.DARK).pixmap(32, 32).toImage()
    b = state_icon(palette.Indicator("critical", "circle", ""), palette.DARK).pixmap(32, 32).toImage()
    assert a != b


def test_tooltip_counts_the_fleet(qtbot):
    tray = TrayNotifier(show=False)
    tray.update_snapshots(rack(d1={"status": ServiceStatus.UNHEALTHY, "failed": True},
                               d2={"status": ServiceStatus.DEGRADED}))
    assert tray.icon.toolTip() == "Faultwatch: 1 unhealthy · 1 degraded · 4 healthy"
    assert fleet_tooltip({}) == "Faultwatch: 0 healthy"


def test_one_notice_per_new_critical_alert(qtbot):
    tray = TrayNotifier(show=False, now=lambda: 100.0)
    tray.update_snapshots(rack())
    assert tray.update_alerts([alert("w", severity="warning")]) == []
    assert tray.last_notice is None
    assert [a.id for a in tray.update_alerts([alert("a1")])] == ["a1"]
    assert tray.last_notice == ("Faultwatch: Device 1", "unhealthy for 30 s", "a1")
    assert tray.update_alerts([alert("a1")]) == []  # the same alert again: no second notice
    assert tray.update_alerts([alert("a1", acknowledged=True), alert("a2", acknowledged=True)]) == []
    # Back after it cleared (one more occurrence): a person is needed again.
    assert [a.id for a in tray.update_alerts([alert("a1", count=2)])] == ["a1"]
    fresh = tray.update_alerts([alert("a1", count=2), alert("a3", "d3"), alert("a4", "d4")])
    assert [a.id for a in fresh] == ["a3", "a4"]
    assert tray.last_notice[0] == "Faultwatch: 2 new critical alerts"
    # Acknowledged and gone from the list: the next occurrence is new.
    tray.update_alerts([])
    assert [a.id for a in tray.update_alerts([alert("a3", "d3")])] == ["a3"]


def test_clicking_the_notice_opens_the_window_on_that_alert(qtbot, qloop, qsettings):
    engine = FakeEngine()
    w = MainWindow(engine, qsettings, now=engine.now, tray=True, sound=False)
    qtbot.addWidget(w)
    try:
        w.bridge.poll()
        assert w.tray is not None
        w.toggle_wall_mode()
        w.showMinimized()
        sid = sorted(engine.snapshots())[3]
        engine.update(sid, status=ServiceStatus.UNHEALTHY, failed=True)
        engine.add_alert(f"unhealthy:{sid}", sid, message="unhealthy for 30 s")
        w.filter_box.setText("zzz-no-match")
        w.bridge.poll()
        assert w.tray.last_notice is not None and w.tray.last_notice[2] == f"unhealthy:{sid}"
        assert w.tray.indicator.role == "critical"
        w.tray.icon.messageClicked.emit()
        assert not w.is_wall_mode()
        assert not w.isMinimized()
        assert w.selected_ids() == [sid]
        assert w.filter_box.text() == ""
        assert w.detail.snapshot is not None and w.detail.snapshot.id == sid  # the detail panel shows it
    finally:
        w.shutdown()


def test_clicking_a_group_alert_selects_its_rack(qtbot, qloop, qsettings):
    engine = FakeEngine()
    w = MainWindow(engine, qsettings, now=engine.now, tray=True, sound=False)
    qtbot.addWidget(w)
    try:
        w.bridge.poll()
        group = next(iter(engine.snapshots().values())).group
        members = sorted(s.id for s in engine.snapshots().values() if s.group == group)
        engine._alerts = [dataclasses.replace(engine.add_alert("group:" + group, ""), group=group)]
        w.bridge.poll()
        w.tray.icon.messageClicked.emit()
        assert sorted(w.selected_ids()) == members
    finally:
        w.shutdown()
