"""File → Connect to engine…, the remembered engines, the engines label, and a console whose own
engine is wrapped in the composite (ids unchanged)."""

from __future__ import annotations

import socket
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QDialogButtonBox

from core.multi import MultiEngine
from fake_engine import FakeEngine
from gui.app import install_engine_controls
from gui.engines import SETTINGS_KEY, remembered_engines
from gui.main_window import MainWindow


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_window(qtbot: Any, qsettings: Any, local: FakeEngine) -> tuple[MainWindow, MultiEngine]:
    multi = MultiEngine(local)
    window = MainWindow(multi, qsettings, confirm=lambda _t, _x: True, now=local.now, tray=False, sound=False)
    qtbot.addWidget(window)
    install_engine_controls(window, multi, qsettings)
    window.bridge.poll()
    return window, multi


def test_own_engine_keeps_its_ids_and_commands(qtbot: Any, qloop: Any, qsettings: Any) -> None:
    local = FakeEngine()
    window, multi = make_window(qtbot, qsettings, local)
    try:
        assert set(window.bridge.snapshots) == set(local.snapshots())
        window.select_services(["plc-1"])
        window.named_actions["action_force_open"].trigger()
        qloop.run(window.wait_idle())
        assert local.calls[-1] == ("force_open", ["plc-1"], "gui")
        assert window.findChild(QObject, "status_engines").isHidden()  # nothing attached: no label
    finally:
        window.shutdown()
        multi.stop()


def test_connect_to_engine_dialog_attaches_and_remembers(qtbot: Any, qloop: Any, qsettings: Any) -> None:
    window, multi = make_window(qtbot, qsettings, FakeEngine())
    controls = window.engine_controls  # type: ignore[attr-defined]
    try:
        action = window.findChild(QObject, "action_connect_engine")
        assert action is not None and action in window.file_menu.actions()
        action.trigger()
        dialog = controls.dialog
        assert dialog is not None and dialog.objectName() == "connect_engine_dialog"
        ok = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)

        dialog.url.setCurrentText("ftp://nowhere")
        dialog.token.setText("t0ken")
        ok.click()
        assert dialog.isVisible() and "not an http(s)://" in dialog.error.text()
        assert multi.attached == []

        url = f"https://127.0.0.1:{closed_port()}"  # nothing listens: the window must stay responsive
        dialog.url.setCurrentText(url)
        ok.click()
        assert len(multi.attached) == 1 and multi.attached[0].url == url
        assert remembered_engines(qsettings) == [url]
        assert "t0ken" not in str(qsettings.value(SETTINGS_KEY))
        controls.refresh()
        assert controls.label.text() == f"127.0.0.1:{url.rsplit(':', 1)[1]} connecting…"
        # The engine was never reached: it contributes no rows, the own engine's stay.
        window.bridge.poll()
        assert all("/" not in sid for sid in window.bridge.snapshots)

        action.trigger()  # the remembered URL is offered first next time
        assert controls.dialog.url.currentText() == url
        controls.dialog.reject()
    finally:
        window.shutdown()
        multi.stop()
