"""gui/wall_controller.py on a bare QMainWindow: entering swaps the page, hides the chrome, enables Esc
and feeds the wall; leaving gives the console, chrome, geometry and focus back; the wall is fed only
while it is up."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLineEdit, QMainWindow, QStackedWidget, QToolBar

from core.snapshot import ServiceSnapshot
from fake_engine import demo_rack, make_snapshot
from gui import palette
from gui.wall import WallView
from gui.wall_controller import ENTER_TEXT, LEAVE_TEXT, WallController


class Parts:
    def __init__(self, qtbot: Any) -> None:
        self.window = QMainWindow()
        qtbot.addWidget(self.window)
        self.stack = QStackedWidget(self.window)
        self.console = QLineEdit(self.stack)
        self.wall = WallView(self.stack, theme=palette.LIGHT)
        self.stack.addWidget(self.console)
        self.stack.addWidget(self.wall)
        self.window.setCentralWidget(self.stack)
        self.toolbar = QToolBar(self.window)
        self.window.addToolBar(self.toolbar)
        self.action = QAction(ENTER_TEXT, self.window)
        self.snaps: dict[str, ServiceSnapshot] = dict(demo_rack())
        self.age: float | None = 75.0
        self.modes: list[bool] = []
        self.controller = WallController(self.window, self.stack, self.console, self.wall,
                                         (self.toolbar, self.window.statusBar()), self.console, self.action,
                                         lambda: self.snaps, lambda: self.age)
        self.controller.mode_changed.connect(self.modes.append)


def test_enter_and_leave(qtbot) -> None:  # type: ignore[no-untyped-def]
    p = Parts(qtbot)
    p.window.show()
    p.window.setGeometry(30, 40, 600, 400)
    p.controller.enter()
    assert p.controller.is_active() and p.modes == [True]
    assert p.stack.currentWidget() is p.wall
    assert not p.toolbar.isVisible() and not p.window.statusBar().isVisible()
    assert p.controller.escape.isEnabled() and p.controller.escape.objectName() == "shortcut_leave_wall"
    assert p.action.text() == LEAVE_TEXT
    assert p.window.isFullScreen() and p.window.geometry() == p.window.screen().geometry()
    assert sum(p.wall.summary_counts().values()) >= len(p.snaps)  # fed on entry
    assert "oldest unacknowledged alarm" in p.wall.summary_text()

    p.controller.enter()  # already up: nothing happens twice
    assert p.modes == [True]
    p.controller.escape.activated.emit()  # Esc
    assert not p.controller.is_active() and p.modes == [True, False]
    assert p.stack.currentWidget() is p.console
    assert p.toolbar.isVisible() and p.window.statusBar().isVisible()
    assert not p.controller.escape.isEnabled()
    assert p.action.text() == ENTER_TEXT
    assert not p.window.isFullScreen() and (p.window.width(), p.window.height()) == (600, 400)


def test_the_wall_is_fed_only_while_it_is_up(qtbot) -> None:  # type: ignore[no-untyped-def]
    p = Parts(qtbot)
    p.controller.toggle()
    before = p.wall.summary_counts()
    p.snaps["new"] = make_snapshot("new", "New device")
    p.controller.show_snapshots()
    assert p.wall.summary_counts() != before  # up: the new device is on the wall
    p.controller.toggle()
    shown = p.wall.summary_counts()
    p.snaps["newer"] = make_snapshot("newer", "Newer device")
    p.age = None
    p.controller.show_snapshots()
    p.controller.show_alert_age()
    assert p.wall.summary_counts() == shown  # down: not fed
    assert "oldest unacknowledged alarm" in p.wall.summary_text()


def test_leaving_gives_the_focus_back(qtbot) -> None:  # type: ignore[no-untyped-def]
    p = Parts(qtbot)
    with qtbot.waitActive(p.window):
        p.window.show()
        p.window.activateWindow()
    p.controller.enter()
    p.wall.setFocus(Qt.FocusReason.OtherFocusReason)
    p.controller.leave()
    assert p.console.hasFocus()
