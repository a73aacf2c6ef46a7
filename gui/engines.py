"""The console's engines as the window shows them: File → Connect to engine…, the remembered list,
and one status-bar label naming every engine with its state ("site-a live · site-b unreachable 12 s").

The merging itself is core.multi.MultiEngine; this module only asks for a URL and a token and shows
what the composite reports. Attaching never blocks: the connection is made on the attach thread.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QMainWindow,
                               QWidget)

from core.multi import MultiEngine
from core.wire import format_age
from core.token import console_token
from gui import window_settings
from gui.actions import make_action

log = logging.getLogger("gui.engines")

# The key and the list live with every other stored setting (gui/window_settings.py).
SETTINGS_KEY = window_settings.ENGINES_KEY
MAX_REMEMBERED = window_settings.MAX_ENGINES


def remembered_engines(settings: QSettings) -> list[str]:
    return window_settings.remembered_engines(settings)


def remember_engine(settings: QSettings, url: str) -> None:
    """Remember `url` first (URLs only: tokens stay in the keyring, a file or the environment)."""
    window_settings.remember_engine(settings, url)


def engines_text(multi: MultiEngine, now: float) -> str:
    """One phrase per attached engine: its name and live / connecting / unreachable with the data's age."""
    parts: list[str] = []
    for handle in multi.attached:
        remote = getattr(handle, "remote", None)
        if remote is None:
            continue
        name = multi.label_of(handle) or remote.name
        if remote.connected:
            parts.append(f"{name} live")
        elif remote.last_data_wall is None:
            parts.append(f"{name} connecting…")
        else:
            parts.append(f"{name} unreachable {format_age(now - remote.last_data_wall)}")
    return " · ".join(parts)


class ConnectDialog(QDialog):
    """Asks for an engine URL (remembered ones offered), a token and an optional CA file."""

    def __init__(self, remembered: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("connect_engine_dialog")
        self.setWindowTitle("Connect to engine")
        self.url = QComboBox(self)
        self.url.setObjectName("connect_url")
        self.url.setEditable(True)
        self.url.addItems(remembered)
        self.url.setCurrentText(remembered[0] if remembered else "https://")
        self.token = QLineEdit(self)
        self.token.setObjectName("connect_token")
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("empty: keyring, then $FAULTWATCH_TOKEN")
        self.ca_file = QLineEdit(self)
        self.ca_file.setObjectName("connect_ca_file")
        self.ca_file.setPlaceholderText("empty: the system's CAs")
        self.error = QLabel(self)
        self.error.setObjectName("connect_error")
        self.error.setWordWrap(True)
        self.error.hide()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self._on_buttons_accepted)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Engine URL", self.url)
        form.addRow("Token", self.token)
        form.addRow("CA file", self.ca_file)
        form.addRow(self.error)
        form.addRow(buttons)

    def _on_buttons_accepted(self) -> None:
        from core.remote import check_engine_url  # here, not at import: aiohttp is not on the way to first paint

        problem = check_engine_url(self.url.currentText().strip())
        if problem is None and not self.resolved_token():
            problem = "no token: type one, or keep it in the keyring or $FAULTWATCH_TOKEN"
        if problem:
            self.error.setText(problem)
            self.error.show()
            return
        self.accept()

    def resolved_token(self) -> str:
        typed = self.token.text().strip()
        if typed:
            return typed
        try:
            return console_token(self.url.currentText().strip())[0]
        except ValueError:
            return ""


class EngineControls(QObject):
    """Installs File → Connect to engine… (objectName "action_connect_engine") and the engines label
    ("status_engines") on a window whose engine is a MultiEngine.

    Attributes:
        multi: the composite engine.
        label: the status-bar label.
        dialog: the open ConnectDialog, if any (tests fill it in).

    Signals:
        engine_back(): an attached engine is reachable again after it was not.
    """

    engine_back = Signal()

    def __init__(self, window: QMainWindow, multi: MultiEngine, settings: QSettings,
                 now: Callable[[], float] = time.time) -> None:
        super().__init__(window)
        self.setObjectName("engine_controls")
        self.window = window
        self.multi = multi
        self.settings = settings
        self.now = now
        self.dialog: ConnectDialog | None = None
        self._connected: dict[int, bool] = {}
        self.action = make_action(window, "action_connect_engine", "Connect to engine…",
                                  "Attach to a Faultwatch engine running elsewhere", self.open_dialog)
        named: dict[str, Any] | None = getattr(window, "named_actions", None)
        if named is not None:
            named["action_connect_engine"] = self.action
        file_menu = getattr(window, "file_menu", None)
        if file_menu is not None:
            actions = file_menu.actions()
            file_menu.insertAction(actions[1] if len(actions) > 1 else None, self.action)
        window.addAction(self.action)
        self.label = QLabel(window)
        self.label.setObjectName("status_engines")
        window.statusBar().addWidget(self.label)
        bridge = getattr(window, "bridge", None)
        if bridge is not None:
            bridge.ticked.connect(self._on_bridge_ticked)
        self.refresh()

    def open_dialog(self) -> ConnectDialog:
        dialog = ConnectDialog(remembered_engines(self.settings), self.window)
        dialog.accepted.connect(self._on_dialog_accepted)
        self.dialog = dialog
        dialog.open()  # window-modal, never a nested event loop
        return dialog

    def _on_dialog_accepted(self) -> None:
        dialog = self.dialog
        if dialog is None:
            return
        url = dialog.url.currentText().strip()
        ca = dialog.ca_file.text().strip() or None
        self.connect_engine(url, dialog.resolved_token(), ca)
        self.dialog = None
        dialog.deleteLater()

    def connect_engine(self, url: str, token: str, ca_file: str | None = None) -> None:
        try:
            self.multi.attach(url, token, ca_file=ca_file)
        except (ValueError, OSError) as exc:
            self.window.statusBar().showMessage(f"✖ cannot attach {url}: {exc}", 10_000)
            return
        remember_engine(self.settings, url)
        self.window.statusBar().showMessage(f"attaching {url}…", 5000)
        self.refresh()

    def _on_bridge_ticked(self) -> None:
        self.refresh()
        connected = {id(h): bool(getattr(getattr(h, "remote", None), "connected", False))
                     for h in self.multi.attached}
        back = [k for k, up in connected.items() if up and not self._connected.get(k, False)]
        self._connected = connected
        if back:
            # The window catches up on what this console could not see (MainWindow.catch_up).
            self.engine_back.emit()

    def refresh(self) -> None:
        text = engines_text(self.multi, self.now())
        if self.label.text() != text:
            self.label.setText(text)
        self.label.setVisible(bool(text))
