"""Editing an attached engine's devices: a real headless `faultwatch` (TLS, operator and viewer tokens)
watching a simulated rack, and the console (offscreen, in this process) attached to it.

Add a device through the dialog → the engine's own file has it (its comments kept), the engine checks it
and it appears in the stream, journaled as gui@<host>; an external edit of the engine's file while the
dialog is open is a conflict the operator resolves; remove; a viewer token is refused with one line and
the file is unchanged; an unreachable engine leaves the dialog open with what was typed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QLineEdit, QPushButton

from core.config import load_config
from core.config_edit import backups
from core.events import ActionEvent
from core.multi import MultiEngine
from core.remote import default_origin
from core.sim.devices import DeviceSpec
from gui.main_window import MainWindow
from tests.e2e.conftest import REPO, FaultwatchProcess, SimThread
from tests.gui.test_attach_e2e import OPERATOR, VIEWER, free_port, status_word, until
from tests.tls_helpers import TlsFiles, make_tls_files

pytestmark = pytest.mark.slow


class Answers:
    def __init__(self) -> None:
        self.conflict_answer = "cancel"
        self.conflicts: list[str] = []
        self.asked: list[str] = []

    def confirm(self, _title: str, text: str) -> bool:
        self.asked.append(text)
        return True

    def conflict(self, text: str) -> Any:
        self.conflicts.append(text)
        return self.conflict_answer


class Engine:
    """One headless engine process over a commented config file."""

    def __init__(self, root: Path, sim: SimThread, tls: TlsFiles) -> None:
        self.port = free_port()
        self.config = root / "site.toml"
        self.text = (
            "# Site A: every comment here must survive edits made from a console on another host.\n"
            "\n[fault_detection]\ncheck_interval_seconds = 1   # fast, for the test\ntimeout_seconds = 0.5\n"
            f'\n[api]\nlisten = "127.0.0.1:{self.port}"\nsite = "site-a"\n'
            f'tls_cert = "{tls.cert}"\ntls_key = "{tls.key}"\n'
            "\n# ---- the rack ----\n"
            f'[[services]]\nid = "a1"   # the first PLC\nendpoint = "{sim.base_url("a1")}"\ngroup = "rack"\n'
            "\n# a trailing note\n")
        self.config.write_text(self.text, encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAULTWATCH_")}
        env.update({"FAULTWATCH_TOKEN": OPERATOR, "FAULTWATCH_VIEWER_TOKEN": VIEWER, "PYTHONUNBUFFERED": "1",
                    "FAULTWATCH_CONFIG_DIR": str(root)})
        self.process = FaultwatchProcess(["--headless", "--config", str(self.config), "--state-dir",
                                          str(root / "state")], env, REPO)
        self.process.wait_for_line("running headless")

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Engine, SimThread, TlsFiles]]:
    tls = make_tls_files(tmp_path / "tls")
    sim = SimThread([DeviceSpec(d) for d in ("a1", "a3")])
    engine: Engine | None = None
    try:
        engine = Engine(tmp_path, sim, tls)
        yield engine, sim, tls
    finally:
        if engine is not None:
            engine.process.close()
        sim.close()


def child(parent: QObject, name: str) -> Any:
    found = parent.findChild(QObject, name)
    assert found is not None, name
    return found


def console(qtbot: Any, qsettings: Any, url: str, token: str, ca: Path, answers: Answers,
            local: Any = None) -> tuple[MainWindow, MultiEngine]:
    multi = MultiEngine(local)
    multi.attach(url, token, ca_file=str(ca))
    window = MainWindow(multi, qsettings, confirm=answers.confirm, tray=False, sound=False, bridge_interval_ms=100)
    window.device_actions.resolve_conflict = answers.conflict
    qtbot.addWidget(window)
    window.start()
    return window, multi


def test_edit_an_attached_engines_devices_through_its_api(qtbot: Any, qloop: Any, qsettings: Any,
                                                          site: tuple[Engine, SimThread, TlsFiles]) -> None:
    engine, sim, tls = site
    answers = Answers()
    window, multi = console(qtbot, qsettings, engine.url, OPERATOR, tls.ca, answers)
    actions = window.device_actions
    problems: list[str] = []
    actions.failed.connect(problems.append)
    try:
        qloop.run(until(lambda: "site-a/a1" in window.bridge.snapshots, "the engine's services"), timeout=30)
        assert actions.actions["action_add_device"].isEnabled()

        # ---- add through the dialog, validated by the engine's loader
        window.select_services(["site-a/a1"])  # the selection names the engine (and the group to start in)
        actions.actions["action_add_device"].trigger()
        qloop.run(until(lambda: actions.editor is not None, "the editor, once the engine's file is read"), timeout=15)
        dialog = actions.editor
        assert dialog is not None and "site-a" in dialog.windowTitle()
        assert child(dialog, "editor_group").text() == "rack"
        assert child(dialog, "editor_fault_detection_timeout_seconds").placeholderText() == "inherit: 0.5"
        save = child(dialog, "editor_save")
        assert isinstance(save, QPushButton)
        child(dialog, "editor_id").setText("a3")
        child(dialog, "editor_endpoint").setText("ftp://nowhere")
        qloop.run(until(lambda: "ftp" in dialog.field_error("editor_endpoint"), "the engine's verdict"), timeout=15)
        assert dialog.field_error("editor_endpoint") == "'ftp://nowhere' is not an http(s) URL"
        assert not save.isEnabled()
        child(dialog, "editor_endpoint").setText(sim.base_url("a3"))
        child(dialog, "editor_name").setText("PLC three")
        qloop.run(until(save.isEnabled, "a valid entry"), timeout=15)
        assert dialog.field_error("editor_endpoint") == ""
        save.click()
        qloop.run(until(lambda: actions.editor is None, "the dialog closed after the save"), timeout=15)
        qloop.run(actions.wait_idle(), timeout=15)
        text = engine.config.read_text(encoding="utf-8")
        assert 'id = "a3"' in text and 'name = "PLC three"' in text
        assert all(line in text.splitlines() for line in engine.text.splitlines())  # every comment kept
        assert text.index('id = "a3"') < text.index("# a trailing note")
        qloop.run(until(lambda: "site-a/a3" in window.bridge.snapshots
                        and status_word(window, "site-a/a3") == "HEALTHY", "a3 checked by the engine"), timeout=30)
        journal = qloop.run(multi.journal_events("site-a/a3", limit=50), timeout=15)
        edits = [(e.origin, e.detail) for e in journal if isinstance(e, ActionEvent) and e.command == "config_edit"]
        assert edits == [(default_origin(), "added a3")]

        # ---- an external edit of the engine's file while the dialog is open: a conflict, never lost
        window.select_services(["site-a/a1"])
        actions.actions["action_edit_device"].trigger()
        qloop.run(until(lambda: actions.editor is not None, "the editor for a1"), timeout=15)
        dialog = actions.editor
        assert dialog is not None and child(dialog, "editor_id").text() == "a1"
        name = child(dialog, "editor_name")
        assert isinstance(name, QLineEdit)
        name.setText("PLC one, renamed in the console")
        save = child(dialog, "editor_save")
        qloop.run(until(save.isEnabled, "valid"), timeout=15)
        assert not child(dialog, "editor_file_changed").isVisibleTo(dialog)
        external = engine.config.read_text(encoding="utf-8") + "\n# edited by hand on the rack\n"
        engine.config.write_text(external, encoding="utf-8")
        actions.store_watch.setInterval(50)
        qloop.run(until(lambda: child(dialog, "editor_file_changed").isVisibleTo(dialog), "said at once"),
                  timeout=15)
        assert "site.toml changed" in child(dialog, "editor_file_changed").text()
        answers.conflict_answer = "cancel"
        save.click()
        qloop.run(until(lambda: bool(answers.conflicts), "the conflict question"), timeout=15)
        qloop.run(actions.wait_idle(), timeout=15)
        assert "changed since it was read" in answers.conflicts[-1]
        assert engine.config.read_text(encoding="utf-8") == external  # nothing written
        assert actions.editor is dialog and name.text() == "PLC one, renamed in the console"  # nor lost
        answers.conflict_answer = "redo"
        save.click()
        qloop.run(until(lambda: actions.editor is None, "saved after reload and redo"), timeout=15)
        qloop.run(actions.wait_idle(), timeout=15)
        after = engine.config.read_text(encoding="utf-8")
        assert "# edited by hand on the rack" in after and 'name = "PLC one, renamed in the console"' in after
        assert len(answers.conflicts) == 2

        # ---- remove: confirmed naming the device, gone from the file and from the stream
        window.select_services(["site-a/a3"])
        actions.actions["action_remove_device"].trigger()
        qloop.run(until(lambda: bool(answers.asked), "the confirmation"), timeout=15)
        assert "PLC three" in answers.asked[-1] and "site.toml" in answers.asked[-1]
        qloop.run(until(lambda: "site-a/a3" not in window.bridge.snapshots, "a3 gone from the stream"), timeout=30)
        assert [s.id for s in load_config(engine.config).services] == ["a1"]
        assert len(backups(engine.config)) == 3

        # ---- import (the engine previews every row) and export, from the engine's file
        src = engine.config.parent / "more.csv"
        src.write_text(f"id,name,endpoint\na4,PLC 4,{sim.base_url('a3')}\na5,Bad,ftp://x\n", encoding="utf-8")
        window.select_services(["site-a/a1"])
        actions.import_devices(str(src))
        qloop.run(until(lambda: actions.preview is not None, "the engine's preview"), timeout=15)
        preview = actions.preview
        assert preview is not None
        assert child(preview, "import_preview_table").rowCount() == 2
        assert "1 device will be added. 1 row has errors" in child(preview, "import_preview_summary").text()
        child(preview, "import_confirm").click()
        qloop.run(until(lambda: "site-a/a4" in window.bridge.snapshots, "a4 in the stream"), timeout=30)
        assert [s.id for s in load_config(engine.config).services] == ["a1", "a4"]
        out = engine.config.parent / "out.csv"
        window.table.clearSelection()
        actions.export_devices(str(out))
        qloop.run(until(out.exists, "the export"), timeout=15)
        assert [line.split(",")[0] for line in out.read_text(encoding="utf-8").splitlines()] == ["id", "a1", "a4"]
        assert not problems, problems

        # ---- a viewer console: refused with one line, the file unchanged
        before = engine.config.read_text(encoding="utf-8")
        viewer_answers = Answers()
        viewer, viewer_multi = console(qtbot, qsettings, engine.url, VIEWER, tls.ca, viewer_answers)
        refused: list[str] = []
        viewer.device_actions.failed.connect(refused.append)
        try:
            qloop.run(until(lambda: "site-a/a1" in viewer.bridge.snapshots, "the viewer's services"), timeout=30)
            viewer.select_services(["site-a/a1"])
            viewer.device_actions.actions["action_remove_device"].trigger()
            qloop.run(until(lambda: bool(refused), "the refusal"), timeout=15)
            assert refused == ["site-a: refused: this console's token may only read; editing devices needs the "
                               "engine's operator token"]
            assert refused[0] in viewer.statusBar().currentMessage()
            assert not viewer_answers.asked  # refused before asking anything
            viewer.device_actions.actions["action_add_device"].trigger()
            qloop.run(until(lambda: len(refused) == 2, "the second refusal"), timeout=15)
            assert viewer.device_actions.editor is None
        finally:
            viewer.shutdown()
            viewer.close()
            viewer_multi.stop()
        assert engine.config.read_text(encoding="utf-8") == before

        # ---- an unreachable engine: a clear message, and the dialog keeps what was typed
        window.select_services(["site-a/a1"])
        actions.actions["action_duplicate_device"].trigger()
        qloop.run(until(lambda: actions.editor is not None, "the duplicate editor"), timeout=15)
        dialog = actions.editor
        assert dialog is not None and child(dialog, "editor_id").text() == "a1-2"
        save = child(dialog, "editor_save")
        qloop.run(until(save.isEnabled, "valid"), timeout=15)
        engine.process.kill()
        child(dialog, "editor_name").setText("typed while the engine is away")
        qloop.run(until(lambda: "engine unreachable" in child(dialog, "editor_errors").text(), "the message"),
                  timeout=30)
        assert child(dialog, "editor_errors").text().startswith("✖ site-a: engine unreachable")
        assert not save.isEnabled()
        save.click()  # even if Save were reached: nothing is sent without the engine's verdict
        qloop.run(actions.wait_idle(), timeout=15)
        assert actions.editor is dialog and child(dialog, "editor_id").text() == "a1-2"
        assert child(dialog, "editor_name").text() == "typed while the engine is away"
        assert 'id = "a1-2"' not in engine.config.read_text(encoding="utf-8")
        dialog.reject()
    finally:
        window.shutdown()
        window.close()
        multi.stop()


LOCAL_RACK = """\
# the console's own rack
[[services]]
id = "plc-1"   # local
endpoint = "http://127.0.0.1:9"
"""


def test_with_an_engine_of_its_own_too_each_edit_goes_to_the_engine_that_owns_the_device(
        qtbot: Any, qloop: Any, qsettings: Any, tmp_path: Path, site: tuple[Engine, SimThread, TlsFiles]) -> None:
    from core.config_edit import ConfigFile
    from core.config_store import RemoteView
    from tests.gui.fake_engine import FakeEngine

    engine, sim, tls = site
    rack = tmp_path / "local.toml"
    rack.write_text(LOCAL_RACK, encoding="utf-8")
    local = FakeEngine()
    local.config_path = str(rack)
    answers = Answers()
    window, multi = console(qtbot, qsettings, engine.url, OPERATOR, tls.ca, answers, local)
    actions = window.device_actions
    offered: list[list[str]] = []
    choice = [0]

    def choose(names: list[str]) -> int:
        offered.append(names)
        return choice[0]
    actions.choose_engine = choose
    try:
        qloop.run(until(lambda: "site-a/a1" in window.bridge.snapshots and "plc-1" in window.bridge.snapshots,
                        "both engines' services"), timeout=30)
        # ---- nothing selected: the operator chooses the engine
        window.table.clearSelection()
        actions.actions["action_add_device"].trigger()
        assert offered == [["this console's engine (local.toml)", "site-a"]]
        assert actions.editor is not None and isinstance(actions.editor.config_file, ConfigFile)  # at once
        actions.editor.reject()
        choice[0] = 1
        actions.actions["action_add_device"].trigger()
        qloop.run(until(lambda: actions.editor is not None, "the engine's editor"), timeout=15)
        dialog = actions.editor
        assert dialog is not None and isinstance(dialog.config_file, RemoteView)
        # Test runs one check from the engine's host, nothing saved
        child(dialog, "editor_id").setText("a3")
        child(dialog, "editor_endpoint").setText(sim.base_url("a3"))
        qloop.run(until(child(dialog, "editor_save").isEnabled, "valid"), timeout=15)
        task = dialog.start_test()
        assert task is not None
        qloop.run(task, timeout=15)
        assert child(dialog, "editor_test_result").text().startswith("HEALTHY · ")
        assert 'id = "a3"' not in engine.config.read_text(encoding="utf-8")
        dialog.reject()

        # ---- a selected device: its own engine's file, without asking
        offered.clear()
        window.select_services(["plc-1"])
        actions.actions["action_edit_device"].trigger()
        dialog = actions.editor
        assert dialog is not None and not offered and child(dialog, "editor_id").text() == "plc-1"
        child(dialog, "editor_name").setText("Local PLC")
        dialog.validate_now()
        child(dialog, "editor_save").click()
        qloop.run(actions.wait_idle(), timeout=15)
        assert load_config(rack).service("plc-1").name == "Local PLC"
        assert ("config_edit", str(rack), "gui", "changed plc-1", "plc-1") in local.calls
        assert 'name = "Local PLC"' not in engine.config.read_text(encoding="utf-8")
        # devices of two engines cannot be removed together (one file each): one line, nothing asked
        window.select_services(["plc-1", "site-a/a1"])
        assert not actions.actions["action_remove_device"].isEnabled()
        actions.remove_device()
        assert "one engine" in window.statusBar().currentMessage() and not answers.asked
    finally:
        window.shutdown()
        window.close()
        multi.stop()
