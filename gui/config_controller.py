"""Which configuration the console runs: File → Open, the recent configs, and the automatic reload
when the running config file changes on disk, with the outcome told the right way (a window-modal box
when the user asked, the non-modal notice when nobody may be at the screen).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Coroutine

from PySide6.QtCore import QObject, QSettings, Qt, Signal
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox, QWidget

from core.snapshot import CommandResult, EngineControl
from gui import window_settings
from gui.config_watch import DEBOUNCE_MS, ConfigNotice, ConfigWatcher

log = logging.getLogger("gui.config")

ORIGIN = "gui"

Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Future[Any]"]


class ConfigController(QObject):
    """Opens and reloads configuration files for one window.

    Attributes:
        engine: the EngineControl asked to reload.
        settings: where the recent configs are kept (gui/window_settings.py).
        watcher: the ConfigWatcher on the running file (objectName "config_watch").
        notice: the ConfigNotice strip that shows a refused automatic reload.
        recent_menu: File → Recent configs, once attached.
        spawn: runs a coroutine as a task its owner can wait for and cancel.

    Signals:
        message(str, int): a status-bar message and its timeout in ms.
        progress_changed(str): the load in progress ("" when none).
    """

    message = Signal(str, int)
    progress_changed = Signal(str)

    def __init__(self, engine: EngineControl, settings: QSettings, notice: ConfigNotice, spawn: Spawn,
                 dialog_parent: QWidget, *, debounce_ms: int = DEBOUNCE_MS) -> None:
        super().__init__(dialog_parent)
        self.setObjectName("config_controller")
        self.engine = engine
        self.settings = settings
        self.notice = notice
        self.spawn = spawn
        self.dialog_parent = dialog_parent
        self.watcher = ConfigWatcher(self, debounce_ms)
        self.watcher.changed.connect(self._on_watcher_changed)
        self.recent_menu: QMenu | None = None

    # ---- lifecycle
    def start(self) -> None:
        """Watch the file the engine runs (the demo's is generated; a remote engine has none)."""
        self.watcher.watch(self.engine.config_path or None)

    def stop(self) -> None:
        self.watcher.watch(None)

    # ---- opening
    def choose_and_open(self) -> None:
        """File → Open: ask for a file (starting at the most recent one) and open it."""
        recent = self.recent_configs()
        path, _ = QFileDialog.getOpenFileName(self.dialog_parent, "Open configuration", recent[0] if recent else "",
                                              "Faultwatch config (*.toml)")
        if path:
            self.open_config(path)

    def open_config(self, path: str) -> asyncio.Future[Any]:
        """Ask the engine to load `path`; a refused config shows its one-line error."""
        window_settings.remember_config(self.settings, path)
        self.rebuild_recent_menu()
        self.progress_changed.emit(f"loading {path}…")
        return self.spawn(self.reload(path))

    async def reload(self, path: str, automatic: bool = False) -> CommandResult:
        """Reload `path`. A refusal keeps the running config and shows the one-line error: in a
        window-modal box when the user asked (File → Open), in the non-modal notice when the file
        changed on disk (nobody may be at the screen to close a box)."""
        try:
            result = await self.engine.reload(path, ORIGIN)
        except Exception as exc:
            log.exception("reload of %s failed", path)
            result = CommandResult(False, str(exc))
        finally:
            self.progress_changed.emit("")
        if result.ok:
            self.notice.hide()
            self.message.emit(f"config reloaded: {result.message}", 5000)
            self.watcher.watch(path)  # File → Open switches the watch to the new file
        else:
            self.message.emit(f"✖ config not reloaded: {result.message}", 15_000)
            if automatic:
                self.notice.show_error(result.message)
            else:
                box = QMessageBox(QMessageBox.Icon.Warning, "Configuration refused", result.message,
                                  QMessageBox.StandardButton.Ok, self.dialog_parent)
                box.setObjectName("config_error_dialog")
                box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
                box.open()  # window-modal and non-blocking
        return result

    def _on_watcher_changed(self, path: str) -> None:
        log.info("%s changed on disk: reloading", path)
        self.spawn(self.reload(path, automatic=True))

    # ---- recent configs
    def recent_configs(self) -> list[str]:
        return window_settings.recent_configs(self.settings)

    def attach_recent_menu(self, menu: QMenu) -> None:
        self.recent_menu = menu
        self.rebuild_recent_menu()

    def rebuild_recent_menu(self) -> None:
        menu = self.recent_menu
        if menu is None:
            return
        menu.clear()
        recent = self.recent_configs()
        for path in recent:
            action = menu.addAction(path)
            action.triggered.connect(lambda _checked=False, p=path: self.open_config(p))
        menu.setEnabled(bool(recent))
