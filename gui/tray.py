"""Tray icon and desktop notices: the fleet's worst state at a glance, new critical alerts as pop-ups.

The icon is the worst state's shape in its colour (a red triangle, an amber triangle, a blue diamond,
a magenta padlock, a grey circle), so it reads in a monochrome tray too; its tooltip counts the fleet.
A critical alert that is new (or back after it cleared) and needs a person pops one desktop notice;
clicking the notice asks the window to open on that alert (`open_alert_requested`). Presentation only:
which alerts are new is decided from the alert values the engine publishes.
"""

from __future__ import annotations

import time
from typing import Callable, Mapping, Sequence

from PySide6.QtCore import QObject, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QSystemTrayIcon

from core.snapshot import AlertView, ServiceSnapshot
from gui import palette, presentation
from gui.alert_banner import unacknowledged
from gui.shapes import paint_shape
from gui.wall import SUMMARY_KEYS, summary_category, tile_indicators

ICON_PX = 64
NOTICE_MS = 10_000


_ALL_HEALTHY = palette.Indicator("normal", "circle", "ALL HEALTHY")


def _tile(snap: ServiceSnapshot) -> palette.Indicator | None:
    """The tile state of one service when it is more severe than normal, else None."""
    st, br, role = tile_indicators(snap)
    if palette.STATUS_ORDER[role] >= palette.STATUS_ORDER["normal"]:
        return None
    shown = st if st.role == role or br is None else br
    return palette.Indicator(role, shown.shape, shown.word)


def _worst(tiles: Mapping[str, palette.Indicator]) -> palette.Indicator:
    if not tiles:
        return _ALL_HEALTHY
    sid = min(tiles, key=lambda k: (palette.STATUS_ORDER[tiles[k].role], k))
    return tiles[sid]


def worst_indicator(snaps: Mapping[str, ServiceSnapshot]) -> palette.Indicator:
    """The most severe tile state of the fleet (ties: the first in id order), or a quiet grey circle."""
    return _worst({sid: t for sid, s in snaps.items() if (t := _tile(s)) is not None})


def _tooltip(counts: Mapping[str, int]) -> str:
    parts = [f"{counts.get(k, 0)} {word.lower()}" for k, word, *_ in SUMMARY_KEYS if counts.get(k) or k == "healthy"]
    return "Faultwatch: " + " · ".join(parts)


def fleet_tooltip(snaps: Mapping[str, ServiceSnapshot]) -> str:
    """"Faultwatch: 2 unhealthy · 1 degraded · 38 healthy", the wall's counts in one line."""
    counts: dict[str, int] = {}
    for s in snaps.values():
        for c in summary_category(s):
            counts[c] = counts.get(c, 0) + 1
    return _tooltip(counts)


def state_icon(indicator: palette.Indicator, theme: palette.Theme) -> QIcon:
    pix = QPixmap(ICON_PX, ICON_PX)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    try:
        colour = QColor(palette.colour(theme, indicator.role))
        paint_shape(p, QRectF(2, 2, ICON_PX - 4, ICON_PX - 4), indicator.shape, colour)
    finally:
        p.end()
    return QIcon(pix)


class TrayNotifier(QObject):
    """Keeps a tray icon's shape, colour and tooltip current, and pops notices for new critical alerts.

    Works without a system tray (offscreen, CI): the icon is created but not shown, and every decision
    (icon, tooltip, which notice, what a click opens) is still made and can be read back.

    Signals:
        open_alert_requested(str, str): alert id and its service ("" for a group alert), after a
            click on its notice.
        show_window_requested(): the tray icon itself was clicked.

    Attributes:
        icon: the QSystemTrayIcon.
        indicator: the worst state shown.
        last_notice: (title, text, alert id) of the last notice popped, or None.
    """

    open_alert_requested = Signal(str, str)
    show_window_requested = Signal()

    def __init__(self, parent: QObject | None = None, *, theme: palette.Theme = palette.DARK,
                 now: Callable[[], float] = time.time, show: bool = True) -> None:
        super().__init__(parent)
        self.setObjectName("tray_notifier")
        self._theme = theme
        self._now = now
        self.icon = QSystemTrayIcon(self)
        self.icon.setObjectName("tray_icon")
        self.indicator = palette.Indicator("normal", "circle", "ALL HEALTHY")
        self.icon.setIcon(state_icon(self.indicator, theme))
        self.icon.setToolTip("Faultwatch")
        self._announced: dict[str, int] = {}  # alert id -> occurrence count already announced
        self._snaps: Mapping[str, ServiceSnapshot] = {}
        # Updated from the services that changed only (gui/presentation.py Tally): the tooltip's counts
        # and the non-normal tiles (the worst of which is the icon), redrawn when they move.
        self._tally = presentation.Tally(lambda s: sorted(summary_category(s)))
        self._abnormal: dict[str, palette.Indicator] = {}
        self._tooltip_version = -1
        self.last_notice: tuple[str, str, str] | None = None
        self._notice_target: tuple[str, str] | None = None
        self.icon.messageClicked.connect(self._on_icon_message_clicked)
        self.icon.activated.connect(self._on_icon_activated)
        if show and QSystemTrayIcon.isSystemTrayAvailable():
            self.icon.show()

    def set_theme(self, theme: palette.Theme) -> None:
        self._theme = theme
        self.icon.setIcon(state_icon(self.indicator, theme))

    def update_snapshots(self, snaps: Mapping[str, ServiceSnapshot]) -> None:
        changed, removed = presentation.identity_diff(self._snaps, snaps)
        self._snaps = snaps  # the bridge replaces its map, never mutates it: keeping it is safe
        if not changed and not removed:
            return
        for sid in removed:
            self._abnormal.pop(sid, None)
        for sid, snap in changed.items():
            shown = _tile(snap)
            if shown is None:
                self._abnormal.pop(sid, None)
            else:
                self._abnormal[sid] = shown
        worst = _worst(self._abnormal)
        if (worst.role, worst.shape) != (self.indicator.role, self.indicator.shape):
            self.icon.setIcon(state_icon(worst, self._theme))
        self.indicator = worst
        self._tally.update(changed, removed)
        if self._tally.version != self._tooltip_version:
            self._tooltip_version = self._tally.version
            self.icon.setToolTip(_tooltip(self._tally.counts()))

    def update_alerts(self, alerts: Sequence[AlertView]) -> list[AlertView]:
        """Pop one notice for the critical alerts that are new; returns them (newest first)."""
        live = {a.id for a in alerts}
        for gone in [i for i in self._announced if i not in live]:
            del self._announced[gone]  # acknowledged and cleared: a later occurrence is new again
        fresh = [a for a in unacknowledged(alerts, self._now())
                 if a.severity == "critical" and a.active and self._announced.get(a.id, 0) < a.count]
        for a in fresh:
            self._announced[a.id] = a.count
        if fresh:
            first = fresh[0]
            snap = self._snaps.get(first.service)
            where = (snap.name if snap is not None else first.service) or (f"group {first.group}" if first.group else "")
            title = f"Faultwatch: {where}" if len(fresh) == 1 else f"Faultwatch: {len(fresh)} new critical alerts"
            text = first.message if len(fresh) == 1 else f"{where}: {first.message} (and {len(fresh) - 1} more)"
            self.last_notice = (title, text, first.id)
            self._notice_target = (first.id, first.service)
            self.icon.showMessage(title, text, QSystemTrayIcon.MessageIcon.Critical, NOTICE_MS)
        return fresh

    def hide(self) -> None:
        self.icon.hide()

    def _on_icon_message_clicked(self) -> None:
        if self._notice_target is not None:
            self.open_alert_requested.emit(*self._notice_target)

    def _on_icon_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger, QSystemTrayIcon.ActivationReason.DoubleClick):
            self.show_window_requested.emit()
