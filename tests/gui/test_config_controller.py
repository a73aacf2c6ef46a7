"""gui/config_controller.py on its own (no main window): a change on disk of the running file reloads it
and a refusal goes to the notice; File → Open of a refused file opens the modal box, is remembered in
the recent list and menu, and a successful open moves the watch to the new file."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Coroutine

import pytest
from PySide6.QtWidgets import QMenu, QMessageBox, QWidget

from fake_engine import FakeEngine
from gui import window_settings
from gui.config_controller import ConfigController
from gui.config_watch import ConfigNotice

WAIT_MS = 5000


class Harness:
    def __init__(self, qtbot: Any, qsettings: Any, engine: FakeEngine) -> None:
        self.parent = QWidget()
        qtbot.addWidget(self.parent)
        self.engine = engine
        self.tasks: list[asyncio.Future[Any]] = []
        self.notice = ConfigNotice(self.parent)
        self.messages: list[tuple[str, int]] = []
        self.progress: list[str] = []
        self.config = ConfigController(engine, qsettings, self.notice, self.spawn, self.parent, debounce_ms=30)
        self.config.message.connect(lambda text, ms: self.messages.append((text, ms)))
        self.config.progress_changed.connect(self.progress.append)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(coro)
        self.tasks.append(task)
        return task

    def reloads(self) -> list[tuple[Any, ...]]:
        return [c for c in self.engine.calls if c[0] == "reload"]


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "faultwatch.toml"
    path.write_text("[fault_detection]\ncheck_interval_seconds = 5.0\n", encoding="utf-8")
    return path


@pytest.fixture
def harness(qtbot, qloop, qsettings, config_file):  # type: ignore[no-untyped-def]
    engine = FakeEngine()
    engine.config_path = str(config_file)
    h = Harness(qtbot, qsettings, engine)
    h.config.start()
    yield h
    h.config.stop()


def test_change_on_disk_reloads_the_running_file(qtbot, qloop, harness, config_file) -> None:  # type: ignore[no-untyped-def]
    assert harness.config.watcher.path == str(config_file)
    with qtbot.waitSignal(harness.config.watcher.changed, timeout=WAIT_MS):
        config_file.write_text("[fault_detection]\ncheck_interval_seconds = 2.0\n", encoding="utf-8")
    qloop.run(asyncio.gather(*harness.tasks))
    assert harness.reloads() == [("reload", str(config_file), "gui")]
    assert harness.messages[-1][0].startswith("config reloaded:")
    assert harness.progress == [""]  # the automatic reload ends any progress shown
    assert harness.notice.text() == ""


def test_refused_automatic_reload_goes_to_the_notice_not_a_box(qtbot, qloop, harness, config_file) -> None:  # type: ignore[no-untyped-def]
    harness.engine.reload_refusal = "services[2].timeout: must be > 0"
    with qtbot.waitSignal(harness.config.watcher.changed, timeout=WAIT_MS):
        config_file.write_text("broken\n", encoding="utf-8")
    qloop.run(asyncio.gather(*harness.tasks))
    assert "services[2].timeout: must be > 0" in harness.notice.text()
    assert harness.parent.findChild(QMessageBox, "config_error_dialog") is None
    assert harness.messages[-1] == ("✖ config not reloaded: services[2].timeout: must be > 0", 15_000)


def test_open_remembers_the_file_and_a_refusal_opens_the_box(qtbot, qloop, harness, qsettings) -> None:  # type: ignore[no-untyped-def]
    menu = QMenu(harness.parent)
    harness.config.attach_recent_menu(menu)
    assert not menu.isEnabled()  # nothing opened yet
    harness.parent.show()
    qloop.run(harness.config.open_config("/tmp/bad.toml"))
    assert harness.progress == ["loading /tmp/bad.toml…", ""]
    box = harness.parent.findChild(QMessageBox, "config_error_dialog")
    assert box is not None and "services[0].endpoint" in box.text()
    box.close()
    assert window_settings.recent_configs(qsettings) == ["/tmp/bad.toml"]
    assert [a.text() for a in menu.actions()] == ["/tmp/bad.toml"] and menu.isEnabled()
    assert harness.notice.text() == ""  # a refusal the user asked for is not an unattended notice


def test_successful_open_moves_the_watch_and_recent_menu_reopens(qtbot, qloop, harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    other = tmp_path / "other.toml"
    other.write_text("", encoding="utf-8")
    menu = QMenu(harness.parent)
    harness.config.attach_recent_menu(menu)
    qloop.run(harness.config.open_config(str(other)))
    assert harness.config.watcher.path == str(other)
    menu.actions()[0].trigger()  # Recent configs → the same file again
    qloop.run(asyncio.gather(*harness.tasks))
    assert harness.reloads() == [("reload", str(other), "gui")] * 2
