"""The console's own engine process starts behind a painted window (gui.app.run_window): the
window does not wait for a second interpreter, a journal and the first checks before it paints, and
an engine process that cannot start still ends the console with its one-line reason."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings

from core.child import ChildEngine
from core.multi import MultiEngine
from gui import app as gui_app
from tests.processes import alive


@pytest.fixture
def token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAULTWATCH_TOKEN", "behind-window-token")


def _child(tmp_path: Path, code: str, ready_timeout_s: float) -> ChildEngine:
    # A stand-in engine process that never says it serves (or dies at once): nothing to wait for.
    return ChildEngine(demo_devices=3, state_dir=str(tmp_path / "state"), argv=[sys.executable, "-c", code],
                       ready_timeout_s=ready_timeout_s)


def _run(qapp: Any, tmp_path: Path, child: ChildEngine, **kw: Any) -> int:
    settings = QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)
    quit_on_close = qapp.quitOnLastWindowClosed()
    try:
        return gui_app.run_window(qapp, MultiEngine(child), settings, **kw)
    finally:
        qapp.setQuitOnLastWindowClosed(quit_on_close)


def test_the_window_paints_before_the_engine_process_serves(qapp: Any, tmp_path: Path, token_env: None,
                                                            capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[str] = []
    monkeypatch.setattr(gui_app, "show_config_error", lambda message: shown.append(message) or 2)
    child = _child(tmp_path, "import time; time.sleep(60)", ready_timeout_s=3.0)
    code = _run(qapp, tmp_path, child, startup_probe=True)
    assert "startup_to_first_paint_s=" in capsys.readouterr().out  # painted while the engine never served
    assert code == 0 and shown == []  # the quit came first: nothing to refuse
    assert child.pid is None or not alive(child.pid)  # stopped with the console


def test_an_engine_process_that_cannot_start_ends_the_console_with_its_reason(
        qapp: Any, tmp_path: Path, token_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[str] = []
    monkeypatch.setattr(gui_app, "show_config_error", lambda message: shown.append(message) or 2)
    child = _child(tmp_path, "import sys; print('journal: disk full', file=sys.stderr); sys.exit(3)",
                   ready_timeout_s=30.0)
    assert _run(qapp, tmp_path, child) == 2
    assert len(shown) == 1 and "did not start" in shown[0] and "disk full" in shown[0]
