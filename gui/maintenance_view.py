"""The Maintenance panel: scheduled windows open now and those coming, with their devices and times.

It reads `EngineControl.scheduled_maintenance()` (core/maintenance_board.py) on the bridge's tick, the
window's one timer: at most every FETCH_INTERVAL_S, one request at a time (a slow attached engine
never piles requests up), and redraws its countdowns once a second from what it has. Open windows are
magenta with the word IN MAINTENANCE (suppressed on purpose, UI.md); coming ones are plain, NEXT.
With nothing scheduled within the horizon the panel hides (report by exception). The detail panel
asks `scheduled_text()` whether the selected device is in, or near, a window.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Any, Callable, Coroutine, Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from core.maintenance_board import DEFAULT_HORIZON_S, MaintenanceWindowView
from gui import palette
from gui.presentation import format_duration

log = logging.getLogger("gui.maintenance")

FETCH_INTERVAL_S = 10.0  # windows change only on a reload or when one opens or closes
HORIZON_S = DEFAULT_HORIZON_S
_NAMES_SHOWN = 3
_ROWS_SHOWN = 5  # the list grows to this many windows, then scrolls

Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Future[Any]"]


def _clock(wall: float, now: float) -> str:
    """"22:28" today, "Fri 09:00" on another day (local time, as the window's start was written)."""
    when, today = datetime.fromtimestamp(wall), datetime.fromtimestamp(now)
    return when.strftime("%H:%M") if when.date() == today.date() else when.strftime("%a %H:%M")


def _who(w: MaintenanceWindowView, names: Callable[[str], str]) -> str:
    if not w.services:
        return f"{w.targets} (no devices)"
    shown = [names(s) for s in w.services[:_NAMES_SHOWN]]
    more = len(w.services) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more else "")


def is_open(w: MaintenanceWindowView, now: float) -> bool:
    """Open at `now`: the engine said so, or its start passed since the last fetch (until it ends)."""
    return (w.active or w.start_wall <= now) and now < w.end_wall


def window_lines(w: MaintenanceWindowView, now: float, names: Callable[[str], str]) -> tuple[str, str, str]:
    """The three short lines of a window's row: state and name, when, which devices."""
    if is_open(w, now):
        return (f"IN MAINTENANCE · {w.name}",
                f"ends {_clock(w.end_wall, now)} (in {format_duration(w.end_wall - now)})", _who(w, names))
    return (f"NEXT · {w.name}",
            f"starts {_clock(w.start_wall, now)} (in {format_duration(w.start_wall - now)}) · "
            f"{format_duration(w.duration_s)} · {w.repeat}", _who(w, names))


def window_tip(w: MaintenanceWindowView, names: Callable[[str], str]) -> str:
    start = datetime.fromtimestamp(w.start_wall).strftime("%a %Y-%m-%d %H:%M")
    end = datetime.fromtimestamp(w.end_wall).strftime("%a %Y-%m-%d %H:%M")
    devices = ", ".join(names(s) for s in w.services) or "none"
    return (f"{w.name}: {start} – {end} ({format_duration(w.duration_s)}, {w.repeat})\n"
            f"Covers {w.targets}\nDevices: {devices}\nAlerts and automatic recovery are held inside; checks go on.")


def scheduled_text(windows: Sequence[MaintenanceWindowView], service_id: str, now: float) -> tuple[str, str]:
    """What the detail panel says about a service: (text, palette role); ("", "normal") when none."""
    mine = [w for w in windows if service_id in w.services and now < w.end_wall]
    inside = [w for w in mine if is_open(w, now)]
    if inside:
        w = min(inside, key=lambda x: x.end_wall)
        return (f"IN {w.name} until {_clock(w.end_wall, now)} (ends in {format_duration(w.end_wall - now)})",
                "suppressed")
    if mine:
        w = min(mine, key=lambda x: x.start_wall)
        return (f"{w.name} starts in {format_duration(w.start_wall - now)} ({_clock(w.start_wall, now)}, "
                f"{format_duration(w.duration_s)}, {w.repeat})", "normal")
    return "", "normal"


class MaintenanceView(QFrame):
    """The panel (objectName "maintenance_view"): a summary line and one row per window.

    Attributes:
        engine: the EngineControl asked for windows.
        windows: the last windows received (open and upcoming).
        error: why the last fetch failed, or which engines it could not read ("" when all answered);
            the summary says "not available" or "incomplete" and its tooltip says why.
        list: the QListWidget of windows ("maintenance_list").
        summary: the QLabel "1 open · 2 next" ("maintenance_summary").

    Signals:
        windows_changed(): new windows arrived (the detail panel re-reads).
    """

    windows_changed = Signal()

    def __init__(self, engine: Any, parent: QWidget | None = None, *, now: Callable[[], float] = time.time,
                 theme: Callable[[], palette.Theme] = lambda: palette.LIGHT,
                 names: Callable[[str], str] = str, spawn: Spawn | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("maintenance_view")
        self.setAccessibleName("Scheduled maintenance")
        self.engine = engine
        self.now = now
        self._theme = theme
        self._names = names
        self._spawn: Spawn = spawn or asyncio.ensure_future
        self.windows: list[MaintenanceWindowView] = []
        self.error = ""
        self._partial = False  # `error` is about some engines only: what is shown is the others' windows
        self._pending: asyncio.Future[Any] | None = None
        self._last_fetch: float | None = None
        self._last_render = 0.0

        title = QLabel("Maintenance", self)
        title.setObjectName("maintenance_title")
        font = title.font()
        font.setBold(True)
        title.setFont(font)
        self.summary = QLabel("", self)
        self.summary.setObjectName("maintenance_summary")
        self.list = QListWidget(self)
        self.list.setObjectName("maintenance_list")
        self.list.setAccessibleName("Maintenance windows")
        self.list.setFrameShape(QFrame.Shape.NoFrame)
        # Short lines, elided rather than wrapped: a row's height is then known (three lines) and the
        # panel can ask the splitter for exactly its rows. The whole text is in the tooltip.
        self.list.setWordWrap(False)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setSpacing(2)  # a little air between windows: each is three lines
        self.list.setSelectionMode(QListWidget.SelectionMode.NoSelection)
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        head = QHBoxLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.addWidget(title)
        head.addStretch(1)
        head.addWidget(self.summary)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 2)
        layout.setSpacing(2)
        layout.addLayout(head)
        layout.addWidget(self.list, 1)
        self.hide()

    # ---------------------------------------------------------------- fetching

    def tick(self) -> None:
        """On the bridge's tick: fetch when due and none is pending; redraw countdowns once a second."""
        now = self.now()
        due = self._last_fetch is None or now - self._last_fetch >= FETCH_INTERVAL_S or now < self._last_fetch
        if due and self._pending is None and _loop_running():
            self._last_fetch = now
            self._pending = self._spawn(self.refresh())
            self._pending.add_done_callback(self._on_fetch_done)
        if abs(now - self._last_render) >= 1.0:
            self._render()

    def _on_fetch_done(self, _future: asyncio.Future[Any]) -> None:
        self._pending = None

    async def refresh(self) -> None:
        """Ask the engine now (tests call it directly; tick() calls it when due)."""
        fetch = getattr(self.engine, "scheduled_maintenance", None)
        if fetch is None:
            self.error = "this engine does not report scheduled maintenance"
            self._render()
            return
        try:
            windows = await fetch(HORIZON_S)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an unreachable attached engine: keep what we had, say why
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if text != self.error:
                log.warning("scheduled maintenance not available: %s", text)
            self.error = text
            self._partial = False
            self._render()
            return
        # A composite (core/multi.py) answers for the engines it could read and names the others.
        partial: dict[str, str] = dict(getattr(self.engine, "maintenance_unavailable", {}) or {})
        self.error = "; ".join(f"{label}: {why}" for label, why in sorted(partial.items()))
        self._partial = bool(partial)
        self.set_windows(windows)

    def set_windows(self, windows: Sequence[MaintenanceWindowView]) -> None:
        changed = list(windows) != self.windows
        self.windows = list(windows)
        self._render()
        if changed:
            self.windows_changed.emit()

    # ---------------------------------------------------------------- reading

    def scheduled_text(self, service_id: str) -> tuple[str, str]:
        """For the detail panel: the window the service is in, or the next one covering it."""
        return scheduled_text(self.windows, service_id, self.now())

    def rows(self) -> list[str]:
        """The rows as shown, their lines joined by "\\n" (tests, accessibility)."""
        return [self.list.item(i).text() for i in range(self.list.count())]

    # ---------------------------------------------------------------- drawing

    def _render(self) -> None:
        now = self.now()
        self._last_render = now
        shown = [w for w in self.windows if now < w.end_wall]
        shown.sort(key=lambda w: (not is_open(w, now), w.end_wall if is_open(w, now) else w.start_wall, w.name))
        theme = self._theme()
        opened = sum(1 for w in shown if is_open(w, now))
        parts = ([f"{opened} open"] if opened else []) + ([f"{len(shown) - opened} next"] if len(shown) > opened else [])
        summary = " · ".join(parts)
        if self.error:
            summary = (summary + " · " if summary else "") + ("incomplete" if self._partial else "not available")
            self.summary.setToolTip(f"Scheduled maintenance could not be read: {self.error}")
        else:
            self.summary.setToolTip("Scheduled [[maintenance]] windows open now and in the coming week")
        if self.summary.text() != summary:
            self.summary.setText(summary)
        while self.list.count() > len(shown):
            self.list.takeItem(self.list.count() - 1)
        for i, w in enumerate(shown):
            item = self.list.item(i) if i < self.list.count() else None
            if item is None:
                item = QListWidgetItem()
                self.list.addItem(item)
            text = "\n".join(window_lines(w, now, self._names))
            if item.text() != text:
                item.setText(text)
                item.setToolTip(window_tip(w, self._names))
                item.setData(Qt.ItemDataRole.AccessibleTextRole, text.replace("\n", ", "))
            role = "suppressed" if is_open(w, now) else "normal"
            colour = QColor(palette.colour(theme, role)) if role != "normal" else QColor(theme.muted)
            if item.foreground().color() != colour:
                item.setForeground(colour)
        # As tall as its rows (up to _ROWS_SHOWN, then it scrolls): the splitter must not squeeze it.
        height = min(len(shown), _ROWS_SHOWN) * (3 * self.list.fontMetrics().lineSpacing() + 10) + 4
        if self.list.maximumHeight() != height:
            self.list.setMaximumHeight(height)
            self.list.setMinimumHeight(height)
        self.setVisible(bool(shown) or bool(self.error))


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False  # a test polling the bridge by hand: it calls refresh() itself
    return True


def install_maintenance_view(window: Any) -> MaintenanceView:
    """Put the panel in the window's right column under the detail panel and wire it: the bridge's
    tick drives it, the detail panel reads it, the window's spawn owns its requests (cancelled on
    shutdown)."""

    def name_of(service_id: str) -> str:
        snap = window.bridge.snapshots.get(service_id)
        return snap.name if snap is not None else service_id

    view = MaintenanceView(window.engine, window, now=window.now, theme=lambda: window.theme, names=name_of,
                           spawn=window.spawn)
    window.right_splitter.insertWidget(1, view)
    window.right_splitter.setStretchFactor(1, 0)
    window.detail.scheduled_of = view.scheduled_text
    window.bridge.ticked.connect(view.tick)
    view.windows_changed.connect(window.detail.refresh)
    return view
