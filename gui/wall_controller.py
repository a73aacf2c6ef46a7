"""Wall mode: the console swapped for the full-screen wall of tiles and back (F11 / the action, Esc to
leave), and what the wall shows while it is up — the fleet's snapshots and the oldest unacknowledged
alert's age. Outside wall mode the wall is not fed: it is not on screen, and laying out 1,000 tiles
nobody sees costs the window its frame rate.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

from PySide6.QtCore import QObject, QRect, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import QApplication, QMainWindow, QStackedWidget, QWidget

from core.snapshot import ServiceSnapshot
from gui.wall import WallView

ENTER_TEXT = "Wall mode"
LEAVE_TEXT = "Leave wall mode"


class WallController(QObject):
    """Enters and leaves wall mode for one window.

    Attributes:
        window: the main window (made full screen, then given back its geometry).
        stack: the central stack holding `console` and `wall`.
        console / wall: the normal console page and the WallView.
        chrome: widgets hidden on the wall (menu bar, toolbar, status bar).
        home: the widget that gets the focus back when the wall is left (the service table).
        action: the toggle action, renamed "Leave wall mode" while the wall is up.
        escape: the Esc shortcut (objectName "shortcut_leave_wall"), enabled only on the wall.

    Signals:
        mode_changed(bool): wall mode was entered (True) or left (False).
    """

    mode_changed = Signal(bool)

    def __init__(self, window: QMainWindow, stack: QStackedWidget, console: QWidget, wall: WallView,
                 chrome: Sequence[QWidget], home: QWidget, action: QAction,
                 snapshots: Callable[[], Mapping[str, ServiceSnapshot]],
                 alert_age: Callable[[], float | None]) -> None:
        super().__init__(window)
        self.setObjectName("wall_controller")
        self.window = window
        self.stack = stack
        self.console = console
        self.wall = wall
        self.chrome = list(chrome)
        self.home = home
        self.action = action
        self.snapshots = snapshots
        self.alert_age = alert_age
        self._active = False
        self._was_maximized = False
        self._normal_geometry: QRect | None = None
        self.escape = QShortcut(QKeySequence(Qt.Key.Key_Escape), window)
        self.escape.setObjectName("shortcut_leave_wall")
        self.escape.setEnabled(False)
        self.escape.activated.connect(self.leave)

    def is_active(self) -> bool:
        return self._active

    def toggle(self) -> None:
        """Swap the console for the full-screen wall (and back)."""
        if self._active:
            self.leave()
        else:
            self.enter()

    def enter(self) -> None:
        if self._active:
            return
        w = self.window
        self._active = True
        self._was_maximized = w.isMaximized()
        self.show_snapshots()
        self.show_alert_age()
        self.stack.setCurrentWidget(self.wall)
        for widget in self.chrome:
            widget.hide()
        self.escape.setEnabled(True)
        self._normal_geometry = w.geometry()
        # Without a window manager (a kiosk X session, Xvfb) showFullScreen() only sets a state
        # nobody acts on and the window keeps its size: cover the screen ourselves first (after
        # showFullScreen() a setGeometry() would drop the full-screen state again).
        screen = w.screen() or QApplication.primaryScreen()
        if screen is not None:
            w.setGeometry(screen.geometry())
        w.showFullScreen()
        self.action.setText(LEAVE_TEXT)
        self.mode_changed.emit(True)

    def leave(self) -> None:
        if not self._active:
            return
        w = self.window
        self._active = False
        self.stack.setCurrentWidget(self.console)
        for widget in self.chrome:
            widget.show()
        self.escape.setEnabled(False)
        if self._was_maximized:
            w.showMaximized()
        else:
            w.showNormal()
            if self._normal_geometry is not None:
                w.setGeometry(self._normal_geometry)
        self.home.setFocus()
        self.action.setText(ENTER_TEXT)
        self.mode_changed.emit(False)

    # ---- what the wall shows
    def show_snapshots(self) -> None:
        """The fleet changed: redraw the wall's tiles (only while it is up)."""
        if self._active:
            self.wall.update_snapshots(self.snapshots())

    def show_alert_age(self) -> None:
        """The alerts or the clock moved: refresh the oldest-alert age (only while the wall is up)."""
        if self._active:
            self.wall.set_alert_age(self.alert_age())
