"""The real window over the real engine and the simulated demo rack (core.runner.EngineThread.for_demo).

One engine serves the whole module (starting it costs more than most tests here); tests that change
its state put it back (a forced breaker is reset). Waits are bounded waits on a condition, never
sleeps: the bridge timer and the engine run on their own, qtbot.waitUntil spins Qt until the
condition holds, and `qloop.run(window.wait_idle())` finishes the commands the actions started.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtWidgets import QApplication

from core.events import BreakerEvent, BreakerState
from gui.main_window import MainWindow
from gui.service_model import Column

runner = pytest.importorskip("core.runner")

WAIT_MS = 15_000


class Confirmer:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def __call__(self, title: str, text: str) -> bool:
        self.asked.append((title, text))
        return True


@pytest.fixture(scope="module")
def rack(tmp_path_factory: pytest.TempPathFactory) -> Any:
    engine = runner.EngineThread.for_demo(state_dir=str(tmp_path_factory.mktemp("demo-state")))
    engine.start()
    yield engine
    engine.stop()


@pytest.fixture
def confirm() -> Confirmer:
    return Confirmer()


@pytest.fixture
def window(qtbot, qloop, qsettings, rack, confirm):
    w = MainWindow(rack, qsettings, confirm=confirm, tray=False, sound=False)
    qtbot.addWidget(w)
    w.show()
    w.start()
    qtbot.waitUntil(lambda: w.model.rowCount() == len(rack.snapshots()), timeout=WAIT_MS)
    qloop.run(w.wait_idle(), timeout=10)
    yield w
    w.shutdown()


def cell(w: MainWindow, sid: str, column: Column, role: Qt.ItemDataRole = Qt.ItemDataRole.DisplayRole) -> Any:
    row = w.model.row_of(sid)
    return None if row is None else w.model.index(row, column).data(role)


def test_table_fills_with_the_demo_rack(window, rack):
    snaps = rack.snapshots()
    assert 20 <= window.model.rowCount() == len(snaps) <= 30
    assert window.proxy.rowCount() == len(snaps)
    names = {window.proxy.index(r, Column.NAME).data() for r in range(window.proxy.rowCount())}
    assert {"PLC line 1", "Compressor controller", "Gateway A"} <= names


def test_force_open_shows_forced_open_and_the_engine_agrees(qtbot, qloop, window, rack, confirm):
    sid = "plc-l2"
    window.select_services([sid])
    window.named_actions["action_force_open"].trigger()
    qloop.run(window.wait_idle(), timeout=10)
    assert "PLC line 2" in confirm.asked[-1][1]
    try:
        qtbot.waitUntil(lambda: cell(window, sid, Column.BREAKER) == "FORCED OPEN", timeout=WAIT_MS)
        assert "FORCED OPEN" in cell(window, sid, Column.BREAKER, Qt.ItemDataRole.ToolTipRole)
        assert "FORCED OPEN" in cell(window, sid, Column.BREAKER, Qt.ItemDataRole.AccessibleTextRole)
        assert rack.snapshots()[sid].breaker.state is BreakerState.FORCED_OPEN

        def transition_in_timeline() -> bool:
            return any(isinstance(e, BreakerEvent) and e.service == sid and e.from_state is BreakerState.CLOSED
                       and e.to_state is BreakerState.FORCED_OPEN for e in window.timeline_view.model.events())
        qtbot.waitUntil(transition_in_timeline, timeout=WAIT_MS)
    finally:  # the engine is shared by the module: put the breaker back
        window.select_services([sid])
        window.named_actions["action_reset_breaker"].trigger()
        qloop.run(window.wait_idle(), timeout=10)
    qtbot.waitUntil(lambda: rack.snapshots()[sid].breaker.state is BreakerState.CLOSED, timeout=WAIT_MS)


def test_restart_names_the_device_and_reaches_the_simulated_device(qtbot, qloop, window, rack, confirm):
    sid = "mqtt-broker"
    device = rack.runtime._sim.device(sid)
    before = device.restarts
    window.select_services([sid])
    window.named_actions["action_restart"].trigger()
    title, text = confirm.asked[-1]
    assert "MQTT broker" in text and "/restart" in text
    qloop.run(window.wait_idle(), timeout=15)
    qtbot.waitUntil(lambda: device.restarts == before + 1, timeout=WAIT_MS)
    assert "restart" in window.statusBar().currentMessage().lower()


def test_chart_receives_points_for_the_selected_service(qtbot, qloop, window):
    window.select_services(["cs-logger"])
    qloop.run(window.wait_idle(), timeout=10)  # the history load
    assert window.chart.title_text() == "Temperature logger"
    qtbot.waitUntil(lambda: len(window.chart.curve_data()[0]) >= 1, timeout=WAIT_MS)
    first_x = window.chart.curve_data()[0][-1]
    # A live point arrives with the next check (1 s interval in the demo).
    qtbot.waitUntil(lambda: window.chart.curve_data()[0][-1] > first_x, timeout=WAIT_MS)
    _, ys = window.chart.curve_data()
    assert ys[-1] >= 0.0


def test_wall_mode_toggles(qtbot, window, rack):
    window.toggle_wall_mode()
    assert window.is_wall_mode()
    assert window.stack.currentWidget() is window.wall_view
    assert not window.toolbar.isVisible()
    assert sum(window.wall_view.summary_counts()[k] for k in ("healthy", "unknown", "degraded", "unhealthy",
                                                               "recovering", "suppressed")) >= 1
    # On screen either way: a tile, or (window too small for tiles) a cell of the overview map.
    assert window.wall_view.tile_rect("plc-l1") is not None or window.wall_view.cell_rect("plc-l1") is not None
    window.toggle_wall_mode()
    assert not window.is_wall_mode()
    assert window.stack.currentWidget() is window.console


def test_filter_box_filters_the_rack(window, rack):
    cold = [s for s in rack.snapshots().values() if s.group == "cold-store"]
    window.filter_box.setText("cold-store")
    assert window.proxy.rowCount() == len(cold) > 0
    window.filter_box.setText("gateway")  # gw-b's standby is its backup endpoint, not a service
    assert {window.proxy.index(r, Column.NAME).data() for r in range(window.proxy.rowCount())} == {
        "Gateway A", "Gateway B"}
    window.filter_box.clear()
    assert window.proxy.rowCount() == window.model.rowCount()


def test_closing_the_window_stops_the_engine(qapp, tmp_path):
    """The app's own quit path (gui.app.run_window): close the window, the engine thread ends."""
    from gui.app import run_window

    engine = runner.EngineThread.for_demo(state_dir=str(tmp_path / "state"))
    settings = QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)
    deadline = time.monotonic() + 20
    seen_rows: list[int] = []

    def close_when_filled() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        if windows and (windows[0].model.rowCount() > 0 or time.monotonic() > deadline):
            seen_rows.append(windows[0].model.rowCount())
            timer.stop()
            windows[0].close()

    timer = QTimer()
    timer.timeout.connect(close_when_filled)
    timer.start(100)
    quit_on_close = qapp.quitOnLastWindowClosed()
    try:
        code = run_window(qapp, engine, settings)
    finally:
        timer.stop()
        qapp.setQuitOnLastWindowClosed(quit_on_close)
        engine.stop()
    assert code == 0
    assert seen_rows and seen_rows[0] > 0
    assert engine._stopped.is_set()  # the worker loop ran to its end: checks stopped, client closed
    assert engine._thread is not None and not engine._thread.is_alive()


def test_reports_on_the_running_demo_rack(qtbot, window, rack):
    """File → Reports… over the live engine: the journal is read while the engine writes it."""
    from gui.reports_view import ReportsView

    qtbot.waitUntil(lambda: all(s.last_check_wall for s in rack.snapshots().values()), timeout=WAIT_MS)
    window.named_actions["action_reports"].trigger()
    view = window.findChild(ReportsView, "reports_view")
    qtbot.waitUntil(lambda: view.report is not None, timeout=WAIT_MS)
    report = view.report
    ids = {s.id for s in report.services}
    assert ids == set(rack.snapshots())
    assert {s.group for s in report.services} == {s.group for s in rack.snapshots().values()}
    assert report.fleet.monitored_s > 0 and view.model.rowCount() == len(ids)
    view.close()
