"""Automatic config reload: notice when the config file changes on disk, and say how the reload went.

`ConfigWatcher` watches one file (and its directory, because editors that save by writing a new file
and renaming it over the old one end the watch on the old file) and emits `changed` once per burst of
writes, after a short quiet period, and only when the file's size/mtime/inode actually differ from the
last version handed out. `ConfigNotice` is the non-modal strip that shows a refused reload's one-line
error: a modal dialog would block a wall display that nobody is standing at.
"""

from __future__ import annotations

import logging
import os

from PySide6.QtCore import QFileSystemWatcher, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

log = logging.getLogger("gui.config")

DEBOUNCE_MS = 300


def _signature(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class ConfigWatcher(QObject):
    """Watches the current config file.

    Attributes:
        path: the file watched (None: nothing).
        watcher: the QFileSystemWatcher (objectName "config_watcher").
        timer: the single-shot debounce timer (objectName "config_reload_timer").

    Signals:
        changed(str): the file at `path` has new contents (debounced; it exists).
    """

    changed = Signal(str)

    def __init__(self, parent: QObject | None = None, debounce_ms: int = DEBOUNCE_MS) -> None:
        super().__init__(parent)
        self.setObjectName("config_watch")
        self.path: str | None = None
        self._seen: tuple[int, int, int] | None = None
        self.watcher = QFileSystemWatcher(self)
        self.watcher.setObjectName("config_watcher")
        self.watcher.fileChanged.connect(self._on_watcher_file_changed)
        self.watcher.directoryChanged.connect(self._on_watcher_directory_changed)
        self.timer = QTimer(self)
        self.timer.setObjectName("config_reload_timer")
        self.timer.setSingleShot(True)
        self.timer.setInterval(debounce_ms)
        self.timer.timeout.connect(self._on_timer_timeout)

    def watch(self, path: str | None) -> None:
        """Watch `path` from now on (its current contents count as seen); None stops watching."""
        path = os.path.abspath(path) if path else None
        if path == self.path:
            self._seen = _signature(path) if path else None
            return
        for old in self.watcher.files() + self.watcher.directories():
            self.watcher.removePath(old)
        self.timer.stop()
        self.path = path
        self._seen = None
        if path is None:
            return
        self._seen = _signature(path)
        directory = os.path.dirname(path)
        if os.path.isdir(directory):
            self.watcher.addPath(directory)
        self._rearm()
        log.info("watching %s for changes", path)

    def mark_seen(self) -> None:
        """The current contents were handled (a reload ran): later events must differ from them."""
        if self.path is not None:
            self._seen = _signature(self.path)

    def _rearm(self) -> None:
        # A file replaced by rename (or deleted and written again) drops out of the watch list.
        if self.path is not None and self.path not in self.watcher.files() and os.path.exists(self.path):
            self.watcher.addPath(self.path)

    def _on_watcher_file_changed(self, path: str) -> None:
        if path != self.path:
            return
        self._rearm()
        self.timer.start()  # restarts: one reload per burst of writes

    def _on_watcher_directory_changed(self, _directory: str) -> None:
        if self.path is None:
            return
        if self.path not in self.watcher.files() and os.path.exists(self.path):
            self._rearm()
            self.timer.start()

    def _on_timer_timeout(self) -> None:
        if self.path is None:
            return
        self._rearm()
        sig = _signature(self.path)
        if sig is None or sig == self._seen:
            return  # gone for the moment (mid-save), or touched without a change
        self._seen = sig
        self.changed.emit(self.path)


class ConfigNotice(QFrame):
    """A non-modal strip for a refused automatic reload: the one-line error and a Dismiss button.

    objectName "config_notice"; the text is "config_notice_text", the button "config_notice_dismiss".
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("config_notice")
        self.setAccessibleName("Configuration notice")
        self.text_label = QLabel(self)
        self.text_label.setObjectName("config_notice_text")
        self.text_label.setTextFormat(Qt.TextFormat.PlainText)
        self.text_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text_label.setWordWrap(True)
        self.dismiss_button = QPushButton("Dismiss", self)
        self.dismiss_button.setObjectName("config_notice_dismiss")
        self.dismiss_button.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 6, 8, 6)
        layout.addWidget(self.text_label, 1)
        layout.addWidget(self.dismiss_button)
        self.hide()

    def show_error(self, message: str) -> None:
        self.text_label.setText(f"✖ Configuration not reloaded — the running configuration stays. {message}")
        self.setAccessibleDescription(self.text_label.text())
        self.show()

    def text(self) -> str:
        return "" if self.isHidden() else self.text_label.text()
