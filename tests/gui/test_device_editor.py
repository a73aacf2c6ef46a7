"""The device editor and the Device menu, driven by objectName (pytest-qt, offscreen).

Most tests run the window over the in-memory FakeEngine with a real config file on disk (what is
checked is the file and the commands sent); the last ones run the real engine with the simulated demo
rack and see an added device being checked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QLineEdit, QMenu, QPushButton

from core.checks.base import healthy
from core.checks.registry import check_types
from core.config import load_config
from core.config_edit import ConfigFile, backups
from core.events import FailureType
from core.options import opt
from gui.device_editor import DeviceEditor
from gui.main_window import MainWindow
from tests.gui.fake_engine import FakeEngine

RACK = """\
# Rack A, commented on purpose: every comment and blank line must survive the editor.

[fault_detection]
check_interval_seconds = 5   # fast

# ---- PLCs ----

[[services]]
id = "plc-1"      # the first PLC
name = "PLC line 1"
endpoint = "http://127.0.0.1:9"
group = "rack-a"

# ---- pumps ----
[[services]]
id = "pump-1"
name = "Pump 1"
endpoint = "http://127.0.0.1:9"
group = "rack-b"

# a trailing note
"""


class Answers:
    """Records the questions asked and gives the answers a test chose."""

    def __init__(self, confirm: bool = True, conflict: str = "redo") -> None:
        self.confirm_answer = confirm
        self.conflict_answer = conflict
        self.asked: list[tuple[str, str]] = []
        self.conflicts: list[str] = []

    def confirm(self, title: str, text: str) -> bool:
        self.asked.append((title, text))
        return self.confirm_answer

    def conflict(self, text: str) -> Any:
        self.conflicts.append(text)
        return self.conflict_answer


@pytest.fixture
def rack_file(tmp_path: Path) -> Path:
    p = tmp_path / "rack.toml"
    p.write_text(RACK, encoding="utf-8")
    return p


@pytest.fixture
def answers() -> Answers:
    return Answers()


@pytest.fixture
def engine(rack_file: Path) -> FakeEngine:
    e = FakeEngine()
    e.config_path = str(rack_file)
    return e


@pytest.fixture
def window(qtbot, qloop, qsettings, engine, answers):
    w = MainWindow(engine, qsettings, confirm=answers.confirm, tray=False, sound=False)
    w.device_actions.resolve_conflict = answers.conflict
    qtbot.addWidget(w)
    w.start()
    w.bridge.poll()
    yield w
    w.shutdown()


def child(parent: QObject, name: str) -> Any:
    found = parent.findChild(QObject, name)
    assert found is not None, name
    return found


def fill(dialog: DeviceEditor, **values: str) -> None:
    for name, text in values.items():
        w = child(dialog, f"editor_{name}")
        assert isinstance(w, QLineEdit)
        w.setText(text)
    dialog.validate_now()


def save_button(dialog: DeviceEditor) -> QPushButton:
    b = child(dialog, "editor_save")
    assert isinstance(b, QPushButton)
    return b


def test_device_actions_are_in_the_device_menu_and_the_context_menu_with_shortcuts(window):
    names = ("action_add_device", "action_edit_device", "action_duplicate_device", "action_remove_device",
             "action_import_devices", "action_export_devices")
    device_menu = next(m for m in window.menuBar().findChildren(QMenu) if m.title().replace("&", "") == "Device")
    in_menu = {a.objectName() for a in device_menu.actions()}
    for name in names:
        action = child(window, name)
        assert name in in_menu
        assert not action.shortcut().isEmpty(), name
        assert action.shortcut().toString() in action.toolTip()
    window.select_services(["plc-1"])
    window.table.customContextMenuRequested.emit(window.table.rect().center())
    context = child(window.table, "services_context_menu")
    assert set(names) <= {a.objectName() for a in context.actions()}
    context.close()


def test_add_a_device_writes_the_file_and_the_engine_reloads_and_journals_it(qtbot, qloop, window, engine, rack_file):
    window.named_actions["action_add_device"].trigger()
    dialog = window.device_actions.editor
    assert dialog is not None and dialog.objectName() == "device_editor"
    assert not save_button(dialog).isEnabled()  # nothing entered yet: id and endpoint are required
    fill(dialog, id="plc-3", name="PLC line 3", group="rack-a", tags="plc, line 3", endpoint="http://127.0.0.1:9003")
    assert save_button(dialog).isEnabled(), dialog.validation
    qtbot.mouseClick(save_button(dialog), _left())
    qloop.run(window.device_actions.wait_idle())
    assert window.device_actions.editor is None  # closed after a good save
    config = load_config(rack_file)
    plc3 = config.service("plc-3")
    assert plc3 is not None and plc3.tags == ("plc", "line 3") and plc3.group == "rack-a"
    assert ("config_edit", str(rack_file), "gui", "added plc-3", "plc-3") in engine.calls
    text = rack_file.read_text(encoding="utf-8")
    for line in RACK.splitlines():
        assert line in text.splitlines()
    assert text.index('id = "plc-3"') < text.index("# a trailing note")


def _left() -> Any:
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


def test_a_bad_field_is_marked_and_never_reaches_the_file(qtbot, qloop, window, engine, rack_file):
    window.named_actions["action_add_device"].trigger()
    dialog = window.device_actions.editor
    fill(dialog, id="plc 3", endpoint="ftp://127.0.0.1:9003", heartbeat="-5", fault_detection_timeout_seconds="soon")
    assert "is not a slug" in dialog.field_error("editor_id")
    assert dialog.field_error("editor_endpoint") == "'ftp://127.0.0.1:9003' is not an http(s) URL"
    assert dialog.field_error("editor_heartbeat").startswith("must be greater than 0")
    assert dialog.field_error("editor_fault_detection_timeout_seconds").startswith("expected a number")
    assert dialog.field_error("editor_name") == ""
    assert child(dialog, "editor_endpoint").property("invalid") is True
    assert not save_button(dialog).isEnabled()
    assert "4 problems" in child(dialog, "editor_errors").text()
    dialog._on_save_button_clicked()  # even if Save were reached somehow
    qloop.run(window.device_actions.wait_idle())
    assert rack_file.read_text(encoding="utf-8") == RACK
    assert not [c for c in engine.calls if c[0] in ("config_edit", "reload")]
    # typing a fix clears the mark and enables Save (after the debounce timer)
    child(dialog, "editor_endpoint").setText("http://127.0.0.1:9003")
    child(dialog, "editor_id").setText("plc-3")
    child(dialog, "editor_heartbeat").setText("")
    child(dialog, "editor_fault_detection_timeout_seconds").setText("1.5")
    assert not save_button(dialog).isEnabled()  # pending until validated
    qtbot.waitUntil(lambda: save_button(dialog).isEnabled(), timeout=2000)
    assert dialog.field_error("editor_endpoint") == ""
    dialog.close()


def test_edit_keeps_comments_and_blank_lines(qloop, window, rack_file):
    window.select_services(["plc-1"])
    window.named_actions["action_edit_device"].trigger()
    dialog = window.device_actions.editor
    assert child(dialog, "editor_id").text() == "plc-1"
    assert child(dialog, "editor_endpoint").text() == "http://127.0.0.1:9"
    fill(dialog, name="PLC line one", fault_detection_max_failures="5")
    save_button(dialog).click()
    qloop.run(window.device_actions.wait_idle())
    text = rack_file.read_text(encoding="utf-8")
    expected = [line for line in RACK.splitlines() if not line.strip() or "#" in line]
    lines = iter(text.splitlines())
    assert all(any(e == line for line in lines) for e in expected)
    svc = load_config(rack_file).service("plc-1")
    assert svc.name == "PLC line one" and svc.fault_detection.max_failures == 5
    assert svc.fault_detection.check_interval_seconds == 5  # still inherited from the file's section
    assert len(backups(rack_file)) == 1


def test_an_external_edit_while_the_dialog_is_open_is_detected(qtbot, qloop, window, rack_file, answers):
    window.select_services(["plc-1"])
    window.named_actions["action_edit_device"].trigger()
    dialog = window.device_actions.editor
    fill(dialog, name="PLC renamed in the console")
    assert not child(dialog, "editor_file_changed").isVisibleTo(dialog)
    external = RACK.replace('name = "Pump 1"', 'name = "Pump one (edited by hand)"')
    window.config_watch.timer.setInterval(20)
    with qtbot.waitSignal(window.config_watch.changed, timeout=5000):
        rack_file.write_text(external, encoding="utf-8")
    assert "changed on disk" in child(dialog, "editor_file_changed").text()  # said at once, not only at Save
    assert child(dialog, "editor_file_changed").isVisibleTo(dialog)
    answers.conflict_answer = "cancel"
    save_button(dialog).click()
    assert answers.conflicts and "changed on disk" in answers.conflicts[-1]
    assert rack_file.read_text(encoding="utf-8") == external  # nothing written
    assert window.device_actions.editor is dialog  # still open: the edit is not lost either
    answers.conflict_answer = "redo"
    save_button(dialog).click()
    qloop.run(window.device_actions.wait_idle())
    config = load_config(rack_file)
    assert config.service("plc-1").name == "PLC renamed in the console"
    assert config.service("pump-1").name == "Pump one (edited by hand)"  # both edits kept


def test_overwrite_after_a_conflict_keeps_the_other_version_in_a_backup(qloop, window, rack_file, answers):
    window.select_services(["pump-1"])
    window.named_actions["action_edit_device"].trigger()
    dialog = window.device_actions.editor
    fill(dialog, name="Pump uno")
    external = RACK + "\n# added by hand\n"
    rack_file.write_text(external, encoding="utf-8")
    answers.conflict_answer = "overwrite"
    save_button(dialog).click()
    qloop.run(window.device_actions.wait_idle())
    assert load_config(rack_file).service("pump-1").name == "Pump uno"
    assert backups(rack_file)[-1].read_text(encoding="utf-8") == external


def test_remove_confirms_naming_the_device(qloop, window, engine, rack_file, answers):
    window.select_services(["pump-1"])
    answers.confirm_answer = False
    window.named_actions["action_remove_device"].trigger()
    assert "Pump 1" in answers.asked[-1][1] and "history stays in the journal" in answers.asked[-1][1]
    assert rack_file.read_text(encoding="utf-8") == RACK
    answers.confirm_answer = True
    window.named_actions["action_remove_device"].trigger()
    qloop.run(window.device_actions.wait_idle())
    assert [s.id for s in load_config(rack_file).services] == ["plc-1"]
    assert ("config_edit", str(rack_file), "gui", "removed pump-1", "pump-1") in engine.calls


def test_delete_in_a_text_box_edits_the_text_and_does_not_remove_a_device(qtbot, window, answers):
    window.show()
    window.activateWindow()
    window.select_services(["plc-1"])
    window.filter_box.setFocus()
    qtbot.waitUntil(window.filter_box.hasFocus, timeout=2000)
    window.filter_box.setText("plx")
    window.filter_box.setCursorPosition(2)
    qtbot.keyClick(window.filter_box, Qt.Key.Key_Delete)
    assert window.filter_box.text() == "pl" and answers.asked == []
    window.filter_box.clear()
    window.select_services(["plc-1"])
    window.table.setFocus()
    qtbot.waitUntil(window.table.hasFocus, timeout=2000)
    answers.confirm_answer = False
    qtbot.keyClick(window.table, Qt.Key.Key_Delete)  # in the table, Del is Remove device…
    assert answers.asked and "PLC line 1" in answers.asked[-1][1]


def test_duplicate_starts_from_a_copy_with_a_new_id(qloop, window, rack_file):
    window.select_services(["plc-1"])
    window.named_actions["action_duplicate_device"].trigger()
    dialog = window.device_actions.editor
    assert child(dialog, "editor_id").text() == "plc-1-2"
    assert child(dialog, "editor_name").text() == "PLC line 1 (copy)"
    save_button(dialog).click()
    qloop.run(window.device_actions.wait_idle())
    assert load_config(rack_file).service("plc-1-2").endpoint == "http://127.0.0.1:9"


CSV_3_GOOD_2_BAD = """\
id,name,group,tags,check_type,endpoint,health_path,restart
plc-10,PLC 10,rack-c,plc;line 3,http,http://127.0.0.1:9010,/status,POST http://127.0.0.1:9010/restart
plc-11,PLC 11,rack-c,,,http://127.0.0.1:9011,,
plc-1,Duplicate,rack-c,,,http://127.0.0.1:9012,,
plc-12,PLC 12,rack-c,,,http://127.0.0.1:9012,status,
plc-13,PLC 13,rack-c,,http,http://127.0.0.1:9013,,
"""


def test_import_csv_previews_every_row_and_adds_only_the_good_ones(qloop, window, engine, rack_file, tmp_path):
    src = tmp_path / "new.csv"
    src.write_text(CSV_3_GOOD_2_BAD, encoding="utf-8")
    dialog = window.device_actions.import_devices(str(src))
    assert dialog is not None and dialog.objectName() == "import_preview"
    table = child(dialog, "import_preview_table")
    assert table.rowCount() == 5
    results = [table.item(r, 2).text() for r in range(5)]
    assert results[0] == results[1] == results[4] == "✔ ok"
    assert "duplicate id 'plc-1'" in results[2]
    assert "health_path: 'status' must start with '/'" in results[3]
    assert "3 devices will be added. 2 rows have errors" in child(dialog, "import_preview_summary").text()
    confirm = child(dialog, "import_confirm")
    assert confirm.text() == "Import 3 devices"
    confirm.click()
    qloop.run(window.device_actions.wait_idle())
    assert [s.id for s in load_config(rack_file).services] == ["plc-1", "pump-1", "plc-10", "plc-11", "plc-13"]
    assert engine.calls[-2][:4] == ("config_edit", str(rack_file), "gui", "added 3 devices: plc-10, plc-11, plc-13")


def test_export_then_import_round_trips(qloop, qtbot, qsettings, window, engine, rack_file, tmp_path, answers):
    out = tmp_path / "fleet.csv"
    assert window.device_actions.export_devices(str(out)) == 2
    before = load_config(rack_file).services
    # import into an empty copy of the rack (same global sections)
    other = tmp_path / "other.toml"
    other.write_text('[fault_detection]\ncheck_interval_seconds = 5\n', encoding="utf-8")
    engine.config_path = str(other)
    dialog = window.device_actions.import_devices(str(out))
    child(dialog, "import_confirm").click()
    qloop.run(window.device_actions.wait_idle())
    assert load_config(other).services == before
    # with a selection only the selection is exported
    engine.config_path = str(rack_file)
    window.select_services(["pump-1"])
    assert window.device_actions.export_devices(str(tmp_path / "one.csv")) == 1


def test_the_check_settings_are_generated_from_each_types_declaration(qapp, rack_file):
    dialog = DeviceEditor(ConfigFile.read(rack_file))
    try:
        combo = child(dialog, "editor_check_type")
        assert isinstance(combo, QComboBox)
        assert [combo.itemData(i) for i in range(combo.count())] == list(check_types())
        for i, (name, ct) in enumerate(check_types().items()):
            combo.setCurrentIndex(i)
            hints = typing.get_type_hints(ct.settings)
            for f in dataclasses.fields(ct.settings):
                key = f"check.{f.name}"
                inner = [a for a in typing.get_args(hints[f.name]) if a is not type(None)] or [hints[f.name]]
                if dataclasses.is_dataclass(inner[0]):
                    assert any(k.startswith(key + ".") for k in dialog.fields), key
                    continue
                field = dialog.fields[key]
                assert field.widget.toolTip().startswith(f.metadata["doc"])
                assert isinstance(field.widget, (QLineEdit, QCheckBox, QComboBox))
            assert child(dialog, "editor_http_box").isVisibleTo(dialog) == (name == "http")
    finally:
        dialog.close()


def test_test_button_runs_one_check_with_the_settings_as_entered(qloop, qapp, rack_file):
    from aiohttp import web

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def serve() -> tuple[web.AppRunner, int]:
        app = web.Application()
        app.router.add_get("/health", health)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    runner, port = qloop.run(serve())
    dialog = DeviceEditor(ConfigFile.read(rack_file))
    try:
        fill(dialog, id="probe", endpoint=f"http://127.0.0.1:{port}")
        task = dialog.start_test()
        assert task is not None
        qloop.run(task)
        text = child(dialog, "editor_test_result").text()
        assert text.startswith("HEALTHY") and " ms" in text and "HTTP 200" in text
        fill(dialog, id="not a slug")  # naming problems do not stop a test; reachability ones do
        qloop.run(dialog.start_test())
        assert child(dialog, "editor_test_result").text().startswith("HEALTHY")
        fill(dialog, id="probe", endpoint="ftp://nope")
        assert dialog.start_test() is None
        assert child(dialog, "editor_test_result").text() == "Fix the marked fields before testing."
        fill(dialog, endpoint=f"http://127.0.0.1:{port}", health_path="/nothing-here")
        qloop.run(dialog.start_test())
        assert child(dialog, "editor_test_result").text().startswith("UNHEALTHY")
        assert "HTTP 404" in child(dialog, "editor_test_result").text()
        assert rack_file.read_text(encoding="utf-8") == RACK  # a test saves nothing
    finally:
        dialog.close()
        qloop.run(runner.cleanup())


# ---------------------------------------------------------------- the real engine


runner_mod = pytest.importorskip("core.runner")


@pytest.fixture
def demo(tmp_path: Path) -> Any:
    engine = runner_mod.EngineThread.for_demo(state_dir=str(tmp_path / "demo-state"), scenario=False)
    engine.start()
    yield engine
    engine.stop()


def test_real_engine_add_a_device_and_see_it_checked_then_remove_it_keeping_its_history(
        qtbot, qloop, qsettings, demo, answers):
    w = MainWindow(demo, qsettings, confirm=answers.confirm, tray=False, sound=False)
    qtbot.addWidget(w)
    w.show()
    w.start()
    try:
        assert "demo" in w.windowTitle() and "copy" in w.windowTitle()
        qtbot.waitUntil(lambda: w.model.rowCount() == len(demo.snapshots()), timeout=15_000)
        template = next(s for s in demo.config.services if s.id == "plc-l1")
        w.named_actions["action_add_device"].trigger()
        dialog = w.device_actions.editor
        assert "copy of the demo configuration" in child(dialog, "editor_demo_note").text()
        fill(dialog, id="plc-3", name="PLC 3", group="line-2", endpoint=template.endpoint)
        save_button(dialog).click()
        qloop.run(w.device_actions.wait_idle(), timeout=10)
        qtbot.waitUntil(lambda: (snap := demo.snapshots().get("plc-3")) is not None and snap.checks_total > 0,
                        timeout=15_000)
        qtbot.waitUntil(lambda: w.model.row_of("plc-3") is not None, timeout=5_000)
        events = qloop.run(demo.journal_events("plc-3"))
        edits = [e for e in events if getattr(e, "command", "") == "config_edit"]
        assert [(e.origin, e.detail) for e in edits] == [("gui", "added plc-3")]
        checked = len([e for e in events if e.KIND == "probe"])

        w.select_services(["plc-3"])
        w.named_actions["action_remove_device"].trigger()
        assert "PLC 3" in answers.asked[-1][1]
        qloop.run(w.device_actions.wait_idle(), timeout=10)
        qtbot.waitUntil(lambda: "plc-3" not in demo.snapshots(), timeout=10_000)
        after = qloop.run(demo.journal_events("plc-3"))
        assert len([e for e in after if e.KIND == "probe"]) >= checked  # history stays
        assert [e.detail for e in after if getattr(e, "command", "") == "config_edit"] == \
            ["removed plc-3", "added plc-3"]
        assert load_config(demo.config_path).service("plc-3") is None
    finally:
        w.shutdown()


def test_a_device_the_file_does_not_have_cannot_be_removed_and_the_operator_is_told(qloop, window, rack_file):
    window.select_services(["chiller"])  # running (in the fake engine) but not in this file
    window.named_actions["action_remove_device"].trigger()
    assert rack_file.read_text(encoding="utf-8") == RACK
    assert "not saved" in window.statusBar().currentMessage()
    assert "no service 'chiller'" in window.statusBar().currentMessage()
    window.named_actions["action_edit_device"].trigger()
    assert window.device_actions.editor is None
    assert "chiller is not in rack.toml" in window.statusBar().currentMessage()


# ---------------------------------------------------------------- a check type that is not http

@dataclass(frozen=True, slots=True)
class PortCheck:
    TYPE: ClassVar[str] = "port"
    host: str = opt("", "Host name or address.", required=True)
    port: int = opt(0, "TCP port that must accept a connection.", min=1, max=65535, required=True)
    greeting: bool = opt(False, "Wait for the device to send something first.")

    def target(self) -> str:
        return f"{self.host}:{self.port}"


class _PortProbe:
    def __init__(self, s: PortCheck) -> None:
        self.s = s

    async def run(self, endpoint: str) -> Any:
        del endpoint
        _reader, writer = await asyncio.open_connection(self.s.host, self.s.port)
        writer.close()
        await writer.wait_closed()
        return healthy(0.1, "port", value=self.s.port)

    def describe_error(self, exc: BaseException) -> tuple[str, FailureType]:
        return f"{type(exc).__name__}: {exc}", FailureType.SERVICE_UNAVAILABLE

    async def close(self) -> None:
        return None


@pytest.fixture
def port_check_type(monkeypatch: pytest.MonkeyPatch) -> str:
    """A small check type declared the way core/checks modules declare theirs (settings with opt(),
    a factory), registered for this test only: the editor must build, validate and test it without
    knowing it."""
    import core.check_once
    import core.config
    import gui.device_editor
    from core.checks import registry
    from core.checks.base import CheckType

    types_ = {**registry.check_types(), "port": CheckType("port", PortCheck, lambda s, ctx, svc: _PortProbe(s),
                                                          "A TCP port that accepts connections.")}
    for module in (core.config, gui.device_editor, core.check_once):
        monkeypatch.setattr(module, "check_types", lambda: types_)
    return "port"


def test_a_device_of_a_non_http_type_gets_host_and_port_fields_validated_saved_and_tested(
        qloop, window, engine, rack_file, port_check_type):
    async def listen() -> asyncio.base_events.Server:
        return await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)

    server = qloop.run(listen())
    port = server.sockets[0].getsockname()[1]
    try:
        window.named_actions["action_add_device"].trigger()
        dialog = window.device_actions.editor
        combo = child(dialog, "editor_check_type")
        combo.setCurrentIndex(combo.findData(port_check_type))
        assert not child(dialog, "editor_http_box").isVisibleTo(dialog)
        assert child(dialog, "editor_port").toolTip().startswith("TCP port that must accept")
        fill(dialog, id="plc-7", host="127.0.0.1", port="70000")
        assert dialog.field_error("editor_port") == "must be at most 65535, got 70000", (dialog.validation, dialog.table())
        assert not save_button(dialog).isEnabled()
        fill(dialog, port=str(port))
        assert save_button(dialog).isEnabled(), dialog.validation
        qloop.run(dialog.start_test())
        assert child(dialog, "editor_test_result").text().startswith(f"HEALTHY · 0.1 ms · value {port}")
        save_button(dialog).click()
        qloop.run(window.device_actions.wait_idle())
        text = rack_file.read_text(encoding="utf-8")
        assert f'check = {{type = "port", host = "127.0.0.1", port = {port}}}' in text
        assert "endpoint" not in text.split('id = "plc-7"')[1]
        # and back in the editor, the fields come from the file
        window.select_services([])
        engine.set_snapshot(dataclasses.replace(engine.snapshots()["plc-1"], id="plc-7", name="plc-7"))
        window.bridge.poll()
        window.select_services(["plc-7"])
        window.named_actions["action_edit_device"].trigger()
        again = window.device_actions.editor
        assert child(again, "editor_check_type").currentData() == "port"
        assert child(again, "editor_port").text() == str(port)
        again.close()
    finally:
        server.close()
