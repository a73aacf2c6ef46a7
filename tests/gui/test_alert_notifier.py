"""gui/alert_notifier.py on its own: the banner and the tray are fed, a new critical alert beeps once
(only with sound on), the banner's buttons reach the commands, and a notice leads to its device or rack."""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import pytest
from PySide6.QtWidgets import QWidget

from core.snapshot import AlertView
from fake_engine import START_WALL, demo_rack
from gui import palette
from gui.alert_banner import AlertBanner
from gui.alert_notifier import AlertNotifier
from gui.tray import TrayNotifier


def alert(alert_id: str, service: str = "", group: str = "", severity: str = "critical", **kw: Any) -> AlertView:
    values: dict[str, Any] = dict(id=alert_id, rule="unhealthy_for", service=service, group=group,
                                  severity=severity, message="down", active=True, acknowledged=False,
                                  silenced_until_wall=None, first_wall=START_WALL - 60, last_wall=START_WALL,
                                  count=1)
    values.update(kw)
    return AlertView(**values)


class Commands:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def acknowledge(self, alert_ids: Sequence[str] | None = None) -> None:
        self.calls.append(("acknowledge", list(alert_ids or [])))

    def silence(self, alert_ids: Sequence[str], seconds: float) -> None:
        self.calls.append(("silence", list(alert_ids), seconds))


@pytest.fixture
def parent(qtbot: Any) -> QWidget:
    """Owns banner, tray and notifier for the test (qtbot holds its widgets only weakly)."""
    widget = QWidget()
    qtbot.addWidget(widget)
    return widget


def make(parent: QWidget, *, sound: bool, tray: bool = True) -> tuple[AlertNotifier, Commands, list[AlertView]]:
    banner = AlertBanner(parent, now=lambda: START_WALL)
    commands = Commands()
    alerts: list[AlertView] = []
    snaps = demo_rack()
    t = TrayNotifier(parent, theme=palette.LIGHT, now=lambda: START_WALL, show=False) if tray else None
    notifier = AlertNotifier(banner, t, commands, sound=sound, alerts=lambda: alerts, snapshots=lambda: snaps,
                             now=lambda: START_WALL, parent=parent)
    return notifier, commands, alerts


def test_new_critical_alert_beeps_once_and_reaches_banner_and_tray(parent: QWidget) -> None:
    notifier, _commands, _alerts = make(parent, sound=True)
    notifier.show_snapshots(demo_rack(), {"plc-1": "PLC line 1"})
    a = alert("a1", "plc-1")
    notifier.show_alerts([a])
    assert notifier.beeps == 1
    assert [p.id for p in notifier.banner.pending] == ["a1"]
    assert notifier.oldest_age() == 60
    assert "PLC line 1" in notifier.banner.text_label.text()
    assert notifier.tray is not None and notifier.tray.last_notice is not None
    notifier.show_alerts([a])  # the same alert again: no second beep
    notifier.show_alerts([a, alert("w1", "plc-2", severity="warning")])  # a warning: no beep
    notifier.show_alerts([dataclasses.replace(a, acknowledged=True), alert("a2", "plc-2", active=False)])
    assert notifier.beeps == 1  # acknowledged or cleared: nothing new to wake anyone for
    notifier.show_alerts([alert("a3", "comp")])
    assert notifier.beeps == 2


def test_no_sound_no_beep_and_no_tray_is_fine(parent: QWidget) -> None:
    notifier, _commands, _alerts = make(parent, sound=False, tray=False)
    notifier.show_alerts([alert("a1", "plc-1")])
    notifier.show_snapshots(demo_rack(), {})
    notifier.set_theme(palette.DARK)
    notifier.hide_tray()
    assert notifier.beeps == 0 and notifier.banner.pending


def test_banner_buttons_reach_the_commands(parent: QWidget) -> None:
    notifier, commands, _alerts = make(parent, sound=False)
    notifier.show_alerts([alert("a1", "plc-1"), alert("a2", "plc-2")])
    notifier.banner.ack_button.click()
    notifier.banner.silence_button.click()
    assert commands.calls == [("acknowledge", ["a1", "a2"]), ("silence", ["a1", "a2"], 3600.0)]


def test_a_notice_opens_its_device_or_its_rack(parent: QWidget) -> None:
    notifier, _commands, alerts = make(parent, sound=False)
    opened: list[list[str]] = []
    raised: list[bool] = []
    notifier.open_requested.connect(opened.append)
    notifier.raise_requested.connect(lambda: raised.append(True))
    alerts.append(alert("g1", group="rack-c"))
    notifier.open_alert("a1", "plc-1")
    notifier.open_alert("g1", "")
    notifier.open_alert("gone", "")
    rack_c = sorted(s.id for s in demo_rack().values() if s.group == "rack-c")
    assert opened[0] == ["plc-1"]
    assert sorted(opened[1]) == rack_c and rack_c
    assert opened[2] == []
    assert notifier.tray is not None
    notifier.tray.show_window_requested.emit()
    assert raised == [True]
