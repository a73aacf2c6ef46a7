"""gui/window_settings.py: every stored key round-trips through a real settings file, and values of the
wrong type (another version, a hand edit) fall back to the defaults instead of breaking the window."""

from __future__ import annotations

import ast
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QStandardItemModel
from PySide6.QtWidgets import QMainWindow, QSplitter, QTableView, QWidget

from gui import window_settings as ws

GUI = Path(__file__).resolve().parents[2] / "gui"


def reopen(settings: QSettings) -> QSettings:
    settings.sync()
    return QSettings(settings.fileName(), QSettings.Format.IniFormat)


def make_window(qtbot) -> tuple[QMainWindow, QSplitter, QTableView, QAction]:  # type: ignore[no-untyped-def]
    window = QMainWindow()
    qtbot.addWidget(window)
    splitter = QSplitter(Qt.Orientation.Horizontal, window)
    table = QTableView(splitter)
    table.setModel(QStandardItemModel(2, 4, table))
    splitter.addWidget(table)
    splitter.addWidget(QWidget(splitter))
    window.setCentralWidget(splitter)
    action = QAction("Group by rack", window)
    action.setCheckable(True)
    action.setChecked(True)
    window.resize(700, 400)
    return window, splitter, table, action


def test_layout_round_trips(qtbot, qsettings: QSettings) -> None:  # type: ignore[no-untyped-def]
    window, splitter, table, action = make_window(qtbot)
    window.show()
    splitter.setSizes([500, 200])
    table.setColumnWidth(1, 177)
    action.setChecked(False)
    window.resize(640, 380)
    ws.WindowLayout(qsettings, window, {"main": splitter}, table.horizontalHeader(), action).save("dark")

    again = reopen(qsettings)
    window2, splitter2, table2, action2 = make_window(qtbot)
    window2.show()
    ws.WindowLayout(again, window2, {"main": splitter2}, table2.horizontalHeader(), action2).restore()
    assert (window2.width(), window2.height()) == (640, 380)
    assert splitter2.sizes() == splitter.sizes()
    assert table2.columnWidth(1) == 177
    assert not action2.isChecked()
    assert ws.theme_name(again, "light") == "dark"


def test_save_without_geometry_keeps_the_saved_geometry(qtbot, qsettings: QSettings) -> None:  # type: ignore[no-untyped-def]
    window, splitter, table, action = make_window(qtbot)
    layout = ws.WindowLayout(qsettings, window, {"main": splitter}, table.horizontalHeader(), action)
    layout.save("light")
    saved = qsettings.value(ws.GEOMETRY_KEY)
    window.resize(300, 200)
    layout.save("light", geometry=False)  # wall mode: full screen is not the size to come back with
    assert qsettings.value(ws.GEOMETRY_KEY) == saved


def test_unknown_splitter_role_is_refused(qtbot, qsettings: QSettings) -> None:  # type: ignore[no-untyped-def]
    window, splitter, table, action = make_window(qtbot)
    try:
        ws.WindowLayout(qsettings, window, {"left": splitter}, table.horizontalHeader(), action)
    except ValueError as exc:
        assert "left" in str(exc)
    else:
        raise AssertionError("a splitter without a key was accepted")


def test_wrong_types_fall_back_to_defaults(qtbot, qsettings: QSettings) -> None:  # type: ignore[no-untyped-def]
    qsettings.setValue(ws.GEOMETRY_KEY, "not bytes")
    qsettings.setValue(ws.HEADER_KEY, 42)
    qsettings.setValue(ws.THEME_KEY, "")
    qsettings.setValue(ws.GROUP_BY_RACK_KEY, "false")
    qsettings.setValue(ws.RECENT_CONFIGS_KEY, 7)
    s = reopen(qsettings)
    window, splitter, table, action = make_window(qtbot)
    ws.WindowLayout(s, window, {"main": splitter}, table.horizontalHeader(), action).restore()
    assert (window.width(), window.height()) == (700, 400)
    assert not action.isChecked()  # INI's "false" is read as False, not as a non-empty string
    assert ws.theme_name(s, "light") == "light"
    assert ws.recent_configs(s) == []


def test_recent_lists_put_the_newest_first_once_and_are_bounded(qsettings: QSettings) -> None:
    for i in range(ws.MAX_RECENT + 3):
        ws.remember_config(qsettings, f"/etc/f{i}.toml")
    ws.remember_config(qsettings, "/etc/f5.toml")
    recent = ws.recent_configs(reopen(qsettings))
    assert recent[0] == "/etc/f5.toml" and recent.count("/etc/f5.toml") == 1
    assert len(recent) == ws.MAX_RECENT
    ws.remember_engine(qsettings, "https://a:8443")
    assert ws.remembered_engines(reopen(qsettings)) == ["https://a:8443"]  # one item survives INI's bare string


def test_every_settings_key_is_named_in_window_settings_only() -> None:
    """One owner per key: no other gui module reads or writes QSettings by a literal key."""
    offenders = []
    for path in sorted(GUI.glob("*.py")):
        if path.name == "window_settings.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("value", "setValue") and node.args
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
                    and "/" in node.args[0].value):
                offenders.append(f"{path.name}:{node.lineno} {node.args[0].value}")
    assert offenders == []
