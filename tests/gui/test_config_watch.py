"""Automatic config reload: the window watches the engine's config file, reloads it (debounced) when
it changes on disk, also after an editor replaced the file, and shows a refusal without a modal box."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from gui.config_watch import ConfigWatcher
from gui.main_window import MainWindow
from fake_engine import FakeEngine

WAIT_MS = 5000


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "faultwatch.toml"
    path.write_text("[fault_detection]\ncheck_interval_seconds = 5.0\n", encoding="utf-8")
    return path


@pytest.fixture
def window(qtbot, qloop, qsettings, config_file):
    engine = FakeEngine()
    engine.config_path = str(config_file)
    w = MainWindow(engine, qsettings, now=engine.now, tray=False, sound=False)
    qtbot.addWidget(w)
    w.config_watch.timer.setInterval(50)  # the debounce, shortened for the test
    w.start()
    w.bridge.stop()  # the tests poll nothing; only the watcher matters here
    qloop.run(w.wait_idle())  # the history load
    w.changes = []  # type: ignore[attr-defined]
    w.config_watch.changed.connect(w.changes.append)  # type: ignore[attr-defined]
    yield w
    w.shutdown()


def reloads(w: MainWindow) -> list[tuple]:
    return [c for c in w.engine.calls if c[0] == "reload"]  # type: ignore[attr-defined]


def wait_for_reloads(qtbot, qloop, w: MainWindow, count: int) -> None:
    # The watcher spawns the reload as a task: let Qt deliver the file event and fire the debounce
    # timer (bounded wait on a Qt-side condition), then run the task to completion.
    qtbot.waitUntil(lambda: len(w.changes) >= count, timeout=WAIT_MS)  # type: ignore[attr-defined]
    qloop.run(w.wait_idle())
    assert len(reloads(w)) == count


def test_watches_the_engines_config_file(window, config_file):
    assert window.config_watch.path == str(config_file)
    assert str(config_file) in window.config_watch.watcher.files()


def test_change_on_disk_reloads_once_per_burst(qtbot, qloop, window, config_file):
    for i in range(3):  # an editor writing in pieces: one reload
        config_file.write_text(f"[fault_detection]\ncheck_interval_seconds = {i + 1}.0\n", encoding="utf-8")
    wait_for_reloads(qtbot, qloop, window, 1)
    assert reloads(window)[0] == ("reload", str(config_file), "gui")
    assert window.statusBar().currentMessage().startswith("config reloaded: ")
    assert window.config_notice.text() == ""


def test_file_replaced_by_rename_is_still_watched(qtbot, qloop, window, config_file):
    for n in (1, 2):  # twice: the watch must survive each replacement
        tmp = config_file.with_suffix(f".toml.tmp{n}")
        tmp.write_text(f"[fault_detection]\ncheck_interval_seconds = {n * 7}.0\n", encoding="utf-8")
        os.replace(tmp, config_file)
        wait_for_reloads(qtbot, qloop, window, n)
        qtbot.waitUntil(lambda: str(config_file) in window.config_watch.watcher.files(), timeout=WAIT_MS)


def test_refused_reload_shows_its_one_line_error_without_a_modal_box(qtbot, qloop, window, config_file):
    message = f"{config_file}: services[0].endpoint: expected an http(s) URL, got 'ftp://x'"
    window.engine.reload_refusal = message  # type: ignore[attr-defined]
    config_file.write_text("[[services]]\nendpoint = 'ftp://x'\n", encoding="utf-8")
    wait_for_reloads(qtbot, qloop, window, 1)
    assert message in window.config_notice.text()
    assert message in window.statusBar().currentMessage()
    assert window.findChild(QMessageBox, "config_error_dialog") is None  # nothing blocks a wall display
    # Fixed: the next good reload clears the notice.
    window.engine.reload_refusal = None  # type: ignore[attr-defined]
    config_file.write_text("[fault_detection]\ncheck_interval_seconds = 2.0\n", encoding="utf-8")
    wait_for_reloads(qtbot, qloop, window, 2)
    assert window.config_notice.text() == ""


def test_touch_without_change_does_not_reload(qtbot, qloop, qapp, tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("a = 1\n", encoding="utf-8")
    watcher = ConfigWatcher(debounce_ms=20)
    seen: list[str] = []
    watcher.changed.connect(seen.append)
    watcher.watch(str(path))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime, same size: an attribute event only
    qtbot.wait(200)
    assert seen == []
    path.write_text("a = 22\n", encoding="utf-8")
    qtbot.waitUntil(lambda: seen == [str(path)], timeout=WAIT_MS)
    watcher.watch(None)
    assert watcher.watcher.files() == [] and watcher.watcher.directories() == []


def test_no_config_path_watches_nothing(qtbot, qloop, qsettings):
    engine = FakeEngine()
    w = MainWindow(engine, qsettings, now=engine.now, tray=False, sound=False)
    qtbot.addWidget(w)
    w.start()
    w.bridge.stop()
    assert w.config_watch.path is None and w.config_watch.watcher.files() == []
    w.shutdown()
