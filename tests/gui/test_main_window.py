"""gui/main_window with the in-memory FakeEngine: the table fills, actions reach the engine with the
selected ids and origin "gui", confirmations, the alert banner, wall mode, the status bar, settings.
The real EngineThread with the demo rack: test_demo_rack.py."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest
from PySide6.QtCore import QObject, QSettings, Qt
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox

from core.events import BreakerEvent, BreakerState
from gui import palette
from gui.main_window import MainWindow
from gui.service_model import INDICATOR_ROLE, Column
from fake_engine import FakeEngine, seed_history

AUTOMATION_NAMES = ("services_table", "latency_chart", "timeline", "action_force_open", "action_force_close",
                    "action_reset_breaker", "action_restart", "action_pause", "action_wall_mode", "alert_banner",
                    "detail_panel", "filter_box", "wall_view", "action_acknowledge", "action_maintenance",
                    "config_notice", "config_watcher", "config_reload_timer")


class Confirmer:
    """An injectable confirm(): records what was asked, answers as told."""

    def __init__(self, answer: bool = True) -> None:
        self.answer = answer
        self.asked: list[tuple[str, str]] = []

    def __call__(self, title: str, text: str) -> bool:
        self.asked.append((title, text))
        return self.answer


@pytest.fixture
def engine() -> FakeEngine:
    e = FakeEngine()
    seed_history(e)
    return e


@pytest.fixture
def confirm() -> Confirmer:
    return Confirmer()


@pytest.fixture
def window(qtbot, qloop, engine, qsettings, confirm):
    w = MainWindow(engine, qsettings, confirm=confirm, now=engine.now, tray=False, sound=False)
    qtbot.addWidget(w)
    w.bridge.poll()  # deterministic: tests poll by hand instead of running the timer
    yield w
    w.shutdown()


def breaker_cell(w: MainWindow, sid: str) -> tuple[str, str, str]:
    idx = w.model.index(w.model.row_of(sid), Column.BREAKER)
    return idx.data(), idx.data(Qt.ItemDataRole.ToolTipRole), idx.data(Qt.ItemDataRole.AccessibleTextRole)


def test_automation_object_names_exist(window):
    for name in AUTOMATION_NAMES:
        assert window.findChild(QObject, name) is not None, name


def test_table_fills_from_engine(window, engine):
    assert window.model.rowCount() == len(engine.snapshots())
    assert window.proxy.rowCount() == len(engine.snapshots())
    names = [window.proxy.index(r, Column.NAME).data() for r in range(window.proxy.rowCount())]
    assert names[:4] == ["Conveyor 1", "Conveyor 2", "PLC line 1", "PLC line 2"]  # rack-a first, by name


def test_history_loaded_into_timeline_on_start(window, engine, qloop):
    window.start()
    qloop.run(window.wait_idle())
    window.bridge.stop()
    kinds = [e.KIND for e in window.timeline_view.model.events()]
    assert "breaker" in kinds and len(kinds) == 4
    assert ("journal_events", None, 1000) in engine.calls


def test_force_open_calls_engine_with_selected_ids_and_gui_origin(window, engine, qloop, confirm):
    window.select_services(["plc-1", "conv-2"])
    window.named_actions["action_force_open"].trigger()
    qloop.run(window.wait_idle())
    assert engine.calls[-1] == ("force_open", ["conv-2", "plc-1"], "gui")  # table order: conv-2 sorts first
    assert "PLC line 1" in confirm.asked[0][1] and "Conveyor 2" in confirm.asked[0][1]
    window.bridge.poll()
    word, tip, accessible = breaker_cell(window, "plc-1")
    assert word == "FORCED OPEN" and "FORCED OPEN" in tip and "FORCED OPEN" in accessible
    idx = window.model.index(window.model.row_of("plc-1"), Column.BREAKER)
    assert idx.data(INDICATOR_ROLE).shape == "lock"
    assert "force open" in window.statusBar().currentMessage()
    # ...and the timeline shows the transition.
    assert any(isinstance(e, BreakerEvent) and e.service == "plc-1" and e.to_state is BreakerState.FORCED_OPEN
               for e in window.timeline_view.model.events())


def test_force_open_declined_sends_nothing(window, engine, qloop, confirm):
    confirm.answer = False
    window.select_services(["plc-1"])
    window.named_actions["action_force_open"].trigger()
    qloop.run(window.wait_idle())
    assert not [c for c in engine.calls if c[0] == "force_open"]


def test_force_close_and_reset(window, engine, qloop):
    window.select_services(["cam-1"])
    window.named_actions["action_force_close"].trigger()
    qloop.run(window.wait_idle())
    window.named_actions["action_reset_breaker"].trigger()
    qloop.run(window.wait_idle())
    assert [c for c in engine.calls if c[0] in ("force_close", "reset")] == [
        ("force_close", ["cam-1"], "gui"), ("reset", ["cam-1"], "gui")]


def test_restart_asks_naming_the_device_and_action(window, engine, qloop, confirm):
    confirm.answer = False
    window.select_services(["plc-1"])
    window.named_actions["action_restart"].trigger()
    qloop.run(window.wait_idle())
    title, text = confirm.asked[-1]
    assert text == ("Restart PLC line 1 (POST http://10.0.1.11/restart)? "
                    "The device will be unavailable while it reboots.")
    assert not [c for c in engine.calls if c[0] == "restart"]

    confirm.answer = True
    gate = asyncio.Event()
    engine.restart_gate = gate
    window.named_actions["action_restart"].trigger()
    qloop.settle(0.01)
    assert window.progress_label.text() == "restarting PLC line 1…"  # progress while it runs
    assert window.isEnabled()  # nothing blocks the window
    gate.set()
    qloop.run(window.wait_idle())
    assert ("restart", ["plc-1"], "gui") in engine.calls
    assert window.progress_label.text() == ""
    assert "restart succeeded" in window.statusBar().currentMessage()


def test_restart_without_restart_action_says_so(window, confirm, qloop):
    confirm.answer = False
    window.select_services(["conv-1"])
    window.named_actions["action_restart"].trigger()
    assert "No restart action is configured for Conveyor 1" in confirm.asked[-1][1]


def test_pause_toggles(window, engine, qloop):
    pause = window.named_actions["action_pause"]
    window.select_services(["pump-2"])
    assert not pause.isChecked() and pause.text() == "Pause"
    pause.trigger()
    qloop.run(window.wait_idle())
    assert engine.calls[-1] == ("pause", ["pump-2"], "gui")
    window.bridge.poll()
    assert pause.isChecked() and pause.text() == "Resume"
    pause.trigger()
    qloop.run(window.wait_idle())
    assert engine.calls[-1] == ("resume", ["pump-2"], "gui")
    window.bridge.poll()
    assert not pause.isChecked()


def test_maintenance_device_and_group(window, engine, qloop):
    window.select_services(["pump-2"])
    window.named_actions["action_maintenance"].trigger()
    qloop.run(window.wait_idle())
    assert engine.calls[-1] == ("maintenance", ["pump-2"], True, "gui")
    window.named_actions["action_maintenance_group"].trigger()
    qloop.run(window.wait_idle())
    assert engine.calls[-1] == ("maintenance", ["rack-b"], True, "gui")


def test_actions_disabled_without_selection(window):
    window.table.clearSelection()
    window.service_actions.refresh_state()
    for name in ("action_force_open", "action_restart", "action_pause"):
        assert not window.named_actions[name].isEnabled()
    assert window.named_actions["action_acknowledge"].isEnabled()


def test_shortcuts_are_shown_in_tooltips(window):
    assert "Ctrl+Shift+O" in window.named_actions["action_force_open"].toolTip()
    assert window.named_actions["action_open_config"].shortcut().toString() == "Ctrl+O"
    assert window.named_actions["action_wall_mode"].shortcut().toString() == "F11"
    assert window.named_actions["action_quit"].shortcut().toString() == "Ctrl+Q"
    shortcuts = [a.shortcut().toString() for a in window.named_actions.values() if not a.shortcut().isEmpty()]
    assert len(shortcuts) == len(set(shortcuts)), "two actions share a shortcut"


def test_alert_banner_hidden_without_unacknowledged_alert(window, engine):
    window.show()
    assert not window.banner.isVisible()
    engine.add_alert("a-old", "comp", acknowledged=True)
    window.bridge.poll()
    assert not window.banner.isVisible()


def test_alert_banner_shows_and_acknowledges(qtbot, window, engine, qloop):
    window.show()
    engine.add_alert("a1", "comp", "critical", "Compressor unhealthy for 30 s", age_s=300)
    engine.add_alert("a2", "pump-1", "warning", "Pump 1 latency anomaly", age_s=60)
    window.bridge.poll()
    assert window.banner.isVisible()
    assert window.banner.counts_label.text() == "▲ 1 critical · 1 warning unacknowledged"
    assert "Compressor unhealthy for 30 s" in window.banner.text_label.text()
    assert "5 min ago" in window.banner.text_label.text()
    qtbot.mouseClick(window.banner.ack_button, Qt.MouseButton.LeftButton)
    qloop.run(window.wait_idle())
    assert engine.calls[-1] == ("acknowledge", ["a1", "a2"], "gui")
    window.bridge.poll()
    assert not window.banner.isVisible()


def test_acknowledge_action_prefers_selected_devices_alerts(window, engine, qloop):
    engine.add_alert("a1", "comp")
    engine.add_alert("a2", "pump-1", "warning")
    window.bridge.poll()
    window.select_services(["pump-1"])
    window.named_actions["action_acknowledge"].trigger()
    qloop.run(window.wait_idle())
    assert engine.calls[-1] == ("acknowledge", ["a2"], "gui")


def test_silence_one_hour(qtbot, window, engine, qloop):
    window.show()
    engine.add_alert("a1", "comp")
    window.bridge.poll()
    qtbot.mouseClick(window.banner.silence_button, Qt.MouseButton.LeftButton)
    qloop.run(window.wait_idle())
    assert engine.calls[-1] == ("silence", ["a1"], 3600.0, "gui")
    window.bridge.poll()
    assert not window.banner.isVisible()


def test_wall_mode_toggles_with_f11_and_back_with_escape(qtbot, window):
    with qtbot.waitActive(window):
        window.show()
        window.activateWindow()
    window.table.setFocus()
    qtbot.keyClick(window.table, Qt.Key.Key_F11)
    assert window.is_wall_mode()
    assert window.stack.currentWidget() is window.wall_view
    assert window.isFullScreen()
    assert not window.toolbar.isVisible()
    qtbot.keyClick(window.wall_view, Qt.Key.Key_Escape)
    assert not window.is_wall_mode()
    assert window.stack.currentWidget() is window.console
    qtbot.keyClick(window.table, Qt.Key.Key_F11)
    assert window.is_wall_mode()
    qtbot.keyClick(window.wall_view, Qt.Key.Key_F11)
    assert not window.is_wall_mode() and not window.isFullScreen()


def test_wall_view_gets_snapshots(window, engine):
    window.toggle_wall_mode()
    assert window.wall_view.summary_counts()  # fed on entry
    engine.update("plc-1", breaker=engine.snapshots()["plc-1"].breaker.__class__(
        BreakerState.OPEN, 5, 0, 1, 0, 3, 5, 30.0))
    window.bridge.poll()
    window.toggle_wall_mode()


def test_status_bar_counts(window, engine):
    text = window.summary_label.text()
    # One category per device, as on the wall: FAILING 1/3 is degraded; forced, maintenance and
    # paused devices are not counted healthy; a recovering device whose breaker is open is unhealthy.
    assert text == ("6 healthy · 2 degraded · 2 unhealthy · 1 forced · 1 maintenance · 1 paused · "
                    "412 checks/s · loop lag 3 ms")
    engine.update("pump-1", status=engine.snapshots()["plc-1"].status)
    window.bridge.poll()
    assert window.summary_label.text().startswith("7 healthy · 1 degraded")


def test_selection_feeds_detail_chart_and_timeline(window, engine, qloop):
    qloop.run(window.load_history())
    window.select_services(["chiller"])
    qloop.run(window.wait_idle())
    assert window.detail.title.text() == "Chiller"
    assert window.detail.text("recovery") == "restart: attempt 2 of 3, waiting"
    assert window.detail.text("recovery_next").startswith("in 4 s")
    assert window.detail.breaker.text().startswith("OPEN")
    latency_calls = [c for c in engine.calls if c[0] == "latency_history"]
    assert latency_calls[-1][1:] == ("chiller", engine.wall - window.chart.range_seconds(), False)
    window.chart.redraw_now()
    xs, _ys = window.chart.curve_data()
    assert len(xs) > 0 and xs[-1] <= engine.wall
    window.timeline_view.selected_only.setChecked(True)
    assert {e.service for e in window.timeline_view.proxy.visible_events()} == {"chiller"}


def test_live_points_and_markers_go_to_the_chart(window, engine, qloop, monkeypatch):
    window.select_services(["pump-2"])
    qloop.run(window.wait_idle())
    points, markers = [], []
    monkeypatch.setattr(window.chart, "add_point", lambda w, ms: points.append((w, ms)))
    monkeypatch.setattr(window.chart, "add_marker", lambda w, k, t, quiet=False: markers.append((k, t)))
    engine.update("pump-2", last_check_wall=engine.wall, last_latency_ms=55.0)
    engine.publish(BreakerEvent(service="pump-2", mono=0.0, wall=engine.wall, from_state=BreakerState.CLOSED,
                                to_state=BreakerState.OPEN, reason="5 failures"))
    window.bridge.poll()
    assert points == [(engine.wall, 55.0)]
    assert markers == [("breaker", "OPEN")]
    window.bridge.poll()
    assert len(points) == 1  # no new check: no new point


def test_service_removed_by_reload_leaves_table_and_detail(window, engine):
    window.select_services(["conv-2"])
    engine.remove("conv-2")
    window.bridge.poll()
    assert window.model.row_of("conv-2") is None
    assert window.detail.snapshot is None or window.detail.snapshot.id != "conv-2"
    assert "Conveyor 2" not in window.detail.title.text()


def test_filter_box_filters_table(window):
    window.filter_box.setText("rack-c")
    assert window.proxy.rowCount() == 5
    window.filter_box.clear()
    assert window.proxy.rowCount() == window.model.rowCount()


def test_open_bad_config_shows_its_one_line_error(qtbot, window, engine, qloop):
    window.show()
    qloop.run(window.open_config("/tmp/bad.toml"))
    assert ("reload", "/tmp/bad.toml", "gui") in engine.calls
    box = window.findChild(QMessageBox, "config_error_dialog")
    assert box is not None and "services[0].endpoint" in box.text()
    box.close()
    assert window.recent_configs()[0] == "/tmp/bad.toml"
    assert [a.text() for a in window.recent_menu.actions()] == ["/tmp/bad.toml"]


def test_settings_restored(qtbot, qloop, engine, qsettings):
    first = MainWindow(engine, qsettings, tray=False, now=engine.now)
    qtbot.addWidget(first)
    first.set_theme("dark")
    first.resize(711, 477)  # the offscreen screen is 800x600: stay inside it
    first.table.setColumnWidth(Column.NAME, 234)
    first.named_actions["action_group_by_rack"].setChecked(False)
    first.save_settings()
    first.shutdown()

    again = QSettings(qsettings.fileName(), QSettings.Format.IniFormat)
    second = MainWindow(engine, again, tray=False, now=engine.now)
    qtbot.addWidget(second)
    assert second.theme.name == "dark"
    assert (second.width(), second.height()) == (711, 477)
    assert second.table.columnWidth(Column.NAME) == 234
    assert not second.named_actions["action_group_by_rack"].isChecked()
    assert second.named_actions["action_theme_dark"].isChecked()
    second.set_theme("light")


def test_theme_switch_recolours_views(window):
    window.set_theme("dark")
    fg = window.model.index(window.model.row_of("comp"), Column.STATUS).data(Qt.ItemDataRole.ForegroundRole)
    assert fg.name() == palette.DARK.critical
    assert window.indicator_delegate.theme is palette.DARK
    window.set_theme("light")


def test_screenshot_renders(window, qtbot, tmp_path):
    window.resize(1440, 900)
    window.show()
    window.select_services(["chiller"])
    image = window.grab()
    assert image.save(str(tmp_path / "w.png"))


# ---------------------------------------------------------------- against the real engine: test_demo_rack.py

# ---------------------------------------------------------------- the real process (qasync + sockets)

def _app_env(tmp_path) -> dict[str, str]:
    import os

    env = dict(os.environ)
    env.update(QT_QPA_PLATFORM="offscreen", FAULTWATCH_STATE_DIR=str(tmp_path / "state"),
               XDG_CONFIG_HOME=str(tmp_path / "config"), HOME=str(tmp_path))
    return env


def _need_runner() -> None:
    try:
        import core.runner  # noqa: F401
    except ImportError as exc:  # pragma: no cover
        pytest.skip(f"core.runner not available: {exc}")


@pytest.mark.slow
def test_startup_probe_prints_first_paint_and_exits_cleanly(tmp_path):
    """Demo engine with real sockets, first paint, orderly shutdown: exit code 0 (see NOTES: 6.12 aborts)."""
    import subprocess
    import sys

    _need_runner()
    proc = subprocess.run([sys.executable, "-m", "gui.launcher", "--demo", "--startup-probe"], env=_app_env(tmp_path),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("startup_to_first_paint_s="))
    assert 0 < float(line.split("=", 1)[1]) < 30
    assert "engine stopped" in proc.stderr


@pytest.mark.slow
def test_sigterm_stops_engine_and_exits_zero(tmp_path):
    import signal
    import subprocess
    import sys

    _need_runner()
    proc = subprocess.Popen([sys.executable, "-m", "gui.launcher", "--demo"], env=_app_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:  # wait on a log line, not a sleep
            seen.append(line)
            if "engine started" in line:
                break
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, "".join(seen)[-1000:] + err[-2000:]
    assert "engine stopped" in err


def test_sort_follows_value_changes_at_a_bounded_rate(window, engine):
    window.named_actions["action_group_by_rack"].setChecked(False)
    window.table.sortByColumn(Column.P95_MS, Qt.SortOrder.DescendingOrder)
    top = lambda: window.proxy.index(0, Column.NAME).data()  # noqa: E731
    assert top() == "Pump 1"  # p95 1730 ms
    engine.update("conv-2", p95_ms=4000.0)
    window.bridge.poll()
    assert window.proxy.index(window.proxy.mapFromSource(
        window.model.index(window.model.row_of("conv-2"), 0)).row(), Column.P95_MS).data() == "4000"
    assert top() == "Pump 1"  # not re-sorted on every tick: rows do not jump under the pointer
    engine.wall += 3
    window.bridge.poll()
    assert top() == "Conveyor 2"
    engine.set_snapshot(dataclasses.replace(engine.snapshots()["conv-2"], id="new-dev", name="New device",
                                            p95_ms=9000.0))
    window.bridge.poll()
    assert window.proxy.rowCount() == window.model.rowCount()
    assert top() == "New device"  # a new service is placed in sort order at once


def test_wall_mode_covers_the_screen_and_gives_the_window_back(window):
    # Without a window manager showFullScreen() alone leaves the window at its size (Xvfb, kiosks).
    window.show()
    window.setGeometry(20, 30, 700, 450)
    window.toggle_wall_mode()
    assert window.geometry() == window.screen().geometry()
    assert window.isFullScreen()
    window.toggle_wall_mode()
    assert (window.width(), window.height()) == (700, 450)
