"""How the console tells a person about alerts: the banner above the table, the tray icon and its
desktop notices, a beep for a new critical alert (when `[alerts] sound` is on), and the way back from a
notice to the device or rack it is about. Which alerts exist and their states come from the engine;
this module only decides who is told, once per alert.
"""

from __future__ import annotations

import time
from typing import Callable, Mapping, Protocol, Sequence

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QApplication

from core.snapshot import AlertView, ServiceSnapshot
from gui import palette
from gui.alert_banner import AlertBanner, unacknowledged
from gui.tray import TrayNotifier


class Commands(Protocol):
    """What the banner's buttons ask of the engine (gui/actions.py's ServiceActions)."""

    def acknowledge(self, alert_ids: Sequence[str] | None = None) -> None: ...

    def silence(self, alert_ids: Sequence[str], seconds: float) -> None: ...


class AlertNotifier(QObject):
    """Feeds the banner and the tray from the engine's alerts and snapshots; beeps for new critical ones.

    Attributes:
        banner: the AlertBanner above the table.
        tray: the TrayNotifier, or None (no tray asked for: tests, screenshots).
        sound: beep when a new critical alert arrives.
        alerts / snapshots: the current alert and snapshot values (the bridge's).
        now: wall-clock callable.

    Signals:
        open_requested(list): the window should come up with these service ids selected (an alert's
            device, or its rack's devices; empty when the alert is gone).
        raise_requested(): the window should just come up (the tray icon was clicked).
    """

    open_requested = Signal(object)
    raise_requested = Signal()

    def __init__(self, banner: AlertBanner, tray: TrayNotifier | None, commands: Commands, *, sound: bool,
                 alerts: Callable[[], Sequence[AlertView]], snapshots: Callable[[], Mapping[str, ServiceSnapshot]],
                 now: Callable[[], float] = time.time, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("alert_notifier")
        self.banner = banner
        self.tray = tray
        self.commands = commands
        self.sound = sound
        self.alerts = alerts
        self.snapshots = snapshots
        self.now = now
        self.beeps = 0  # how many times a beep was asked for (a test reads it; QApplication.beep() is silent)
        self._beeped: set[str] = set()
        banner.acknowledge_requested.connect(self._on_banner_acknowledge_requested)
        banner.silence_requested.connect(self._on_banner_silence_requested)
        if tray is not None:
            tray.open_alert_requested.connect(self.open_alert)
            tray.show_window_requested.connect(self._on_tray_show_window_requested)

    def show_alerts(self, alerts: Sequence[AlertView]) -> None:
        """The engine's alerts changed: banner, tray notice, and a beep for the critical ones that are new."""
        self.banner.set_alerts(alerts)
        if self.tray is not None:
            self.tray.update_alerts(alerts)
        fresh = [a for a in unacknowledged(alerts, self.now())
                 if a.severity == "critical" and a.active and a.id not in self._beeped]
        self._beeped.update(a.id for a in fresh)
        if fresh and self.sound:
            self.beeps += 1
            QApplication.beep()

    def show_snapshots(self, snaps: Mapping[str, ServiceSnapshot], names: Mapping[str, str]) -> None:
        """The fleet changed: the banner names devices by `names`, the tray shows the worst state."""
        self.banner.names = names
        if self.tray is not None:
            self.tray.update_snapshots(snaps)

    def refresh_age(self) -> None:
        """The clock moved: the banner's "oldest … ago"."""
        self.banner.refresh_age()

    def oldest_age(self) -> float | None:
        """Seconds since the oldest unacknowledged alert began (None: nothing unacknowledged)."""
        return self.banner.oldest_age()

    def set_theme(self, theme: palette.Theme) -> None:
        if self.tray is not None:
            self.tray.set_theme(theme)

    def hide_tray(self) -> None:
        if self.tray is not None:
            self.tray.hide()

    def open_alert(self, alert_id: str, service: str) -> None:
        """Ask the window to come up on an alert: its device, or every device of its rack for a group alert."""
        self.open_requested.emit(self.services_of(alert_id, service))

    def services_of(self, alert_id: str, service: str) -> list[str]:
        if service:
            return [service]
        alert = next((a for a in self.alerts() if a.id == alert_id), None)
        if alert is None:
            return []
        return [s.id for s in self.snapshots().values() if s.group == alert.group]

    def _on_banner_acknowledge_requested(self, alert_ids: list[str]) -> None:
        self.commands.acknowledge(alert_ids)

    def _on_banner_silence_requested(self, alert_ids: list[str], seconds: float) -> None:
        self.commands.silence(alert_ids, seconds)

    def _on_tray_show_window_requested(self) -> None:
        self.raise_requested.emit()
