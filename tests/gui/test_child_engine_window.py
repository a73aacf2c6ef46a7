"""The window over its own engine in a child process (core/child.py), offscreen with a real child:
rows appear with unqualified ids; the child killed → the status bar says so and the rows say
UNREACHABLE; restarted → the status bar says it runs again and the rows are live."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import os
import signal

import pytest
from PySide6.QtCore import QSettings

from core.child import ChildEngine
from core.multi import MultiEngine
from gui.app import _report_child_engine
from gui.main_window import MainWindow
from gui.reports_view import engine_sources
from gui.service_model import SNAPSHOT_ROLE
from core.wire import is_unreachable

pytestmark = pytest.mark.slow


@pytest.fixture
def child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ChildEngine]:
    monkeypatch.setenv("FAULTWATCH_TOKEN", "child-window-token")
    engine = ChildEngine(demo_devices=6, state_dir=str(tmp_path / "state"))
    yield engine
    engine.stop()


def _rows(window: MainWindow) -> list[Any]:
    return [window.model.index(r, 0).data(SNAPSHOT_ROLE) for r in range(window.model.rowCount())]


def test_the_window_says_when_its_engine_process_dies_and_comes_back(qtbot: Any, qloop: Any, child: ChildEngine,
                                                                     tmp_path: Path) -> None:
    multi = MultiEngine(child)
    multi.start()
    window = MainWindow(multi, QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat),
                        confirm=lambda _t, _x: True, tray=False, sound=False)
    qtbot.addWidget(window)
    _report_child_engine(window, multi)
    window.show()
    window.start()
    try:
        qtbot.waitUntil(lambda: window.model.rowCount() == 6, timeout=60_000)
        assert all("/" not in s.id for s in _rows(window))
        journal, _config = engine_sources(multi)
        path = journal()
        assert path is not None and path.exists()  # Reports read the child's journal
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        qtbot.waitUntil(lambda: "exited" in window.statusBar().currentMessage(), timeout=60_000)
        assert window.statusBar().currentMessage().startswith("Engine process: ")
        qtbot.waitUntil(lambda: all(is_unreachable(s) for s in _rows(window)), timeout=60_000)
        qtbot.waitUntil(lambda: window.statusBar().currentMessage() == "Engine process: running", timeout=60_000)
        qtbot.waitUntil(lambda: not any(is_unreachable(s) for s in _rows(window)), timeout=60_000)
        assert window.model.rowCount() == 6
    finally:
        window.shutdown()
        multi.stop()
