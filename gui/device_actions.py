"""Device menu: add, edit, duplicate, remove, import and export devices, and what saving means.

The controller between the window, the device editor and core/config_edit.py. Saving writes the
config file (atomically, with backups, refusing to write over a file that changed on disk unless the
operator chooses to), then asks the engine to reload it and journal the edit as a `config_edit`
action with origin "gui" ("added plc-3"). In the demo, the file is the demo's generated copy in the
state directory and the window says so.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction, QColor
from PySide6.QtWidgets import (QDialog, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QMenu, QMessageBox,
                               QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from core.config_edit import (ConfigEditError, ConfigFile, Conflict, Edit, ImportPreview, export_csv, preview_csv,
                              preview_toml, save)
from core.snapshot import CommandResult
from gui.actions import Confirm, default_confirm, make_action
from gui.device_editor import DeviceEditor

if TYPE_CHECKING:
    from gui.main_window import MainWindow

log = logging.getLogger("gui.editor")

ORIGIN = "gui"
ConflictChoice = Literal["redo", "overwrite", "cancel"]
ResolveConflict = Callable[[str], ConflictChoice]
ChooseFile = Callable[[str, str, str], str]  # (mode "open"|"save", title, filter) -> path or ""

ACTION_NAMES = ("action_add_device", "action_edit_device", "action_duplicate_device", "action_remove_device",
                "action_import_devices", "action_export_devices")


def default_resolve_conflict(parent: QWidget | None) -> ResolveConflict:
    """Ask what to do about a file that changed on disk while it was being edited."""
    def ask(text: str) -> ConflictChoice:
        box = QMessageBox(QMessageBox.Icon.Warning, "Configuration changed on disk", text,
                          QMessageBox.StandardButton.NoButton, parent)
        box.setObjectName("editor_conflict_dialog")
        redo = box.addButton("Reload and redo my edit", QMessageBox.ButtonRole.AcceptRole)
        overwrite = box.addButton("Overwrite", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(redo)
        box.exec()
        clicked = box.clickedButton()
        return "redo" if clicked is redo else "overwrite" if clicked is overwrite else "cancel"
    return ask


def default_choose_file(parent: QWidget | None) -> ChooseFile:
    def choose(mode: str, title: str, filters: str) -> str:
        if mode == "save":
            return QFileDialog.getSaveFileName(parent, title, "", filters)[0]
        return QFileDialog.getOpenFileName(parent, title, "", filters)[0]
    return choose


def is_demo(engine: Any) -> bool:
    return bool(getattr(engine, "demo", False) or getattr(getattr(engine, "runtime", None), "demo", None))


class ImportPreviewDialog(QDialog):
    """Every row of an import with its errors; only valid rows are imported (objectName "import_preview").

    Children: `import_preview_table` (one row per input row: line, id, result), `import_preview_summary`,
    `import_confirm` (disabled when no row is valid), `import_cancel`.
    """

    def __init__(self, preview: ImportPreview, source: str, parent: QWidget | None = None,
                 error_colour: str = "#c8102e") -> None:
        super().__init__(parent)
        self.setObjectName("import_preview")
        self.setWindowTitle(f"Import devices from {Path(source).name}")
        self.preview = preview
        layout = QVBoxLayout(self)
        good, bad = len(preview.good), len(preview.bad)
        self.summary = QLabel(self)
        self.summary.setObjectName("import_preview_summary")
        self.summary.setWordWrap(True)
        if preview.problem:
            self.summary.setText(f"✖ Nothing to import: {preview.problem}")
        else:
            self.summary.setText(f"{good} device{'s' if good != 1 else ''} will be added."
                                 + (f" {bad} row{'s have' if bad != 1 else ' has'} errors and will be skipped."
                                    if bad else ""))
        layout.addWidget(self.summary)
        self.table = QTableWidget(len(preview.rows), 3, self)
        self.table.setObjectName("import_preview_table")
        self.table.setHorizontalHeaderLabels(["line", "id", "result"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        for i, row in enumerate(preview.rows):
            result = "✔ ok" if row.ok else "✖ " + "; ".join(row.errors)
            for col, text in enumerate((str(row.line), row.service_id, result)):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                if not row.ok:
                    item.setForeground(QColor(error_colour))
                self.table.setItem(i, col, item)
        layout.addWidget(self.table, 1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setObjectName("import_cancel")
        self.confirm_button = QPushButton(f"Import {good} device{'s' if good != 1 else ''}", self)
        self.confirm_button.setObjectName("import_confirm")
        self.confirm_button.setEnabled(good > 0)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.confirm_button)
        layout.addLayout(buttons)
        self.cancel_button.clicked.connect(self.reject)
        self.confirm_button.clicked.connect(self.accept)
        self.resize(760, 420)


class DeviceActions(QObject):
    """The Device menu's editing actions and the save path behind them.

    Attributes:
        window: the MainWindow (engine, selection, status bar, config watch).
        actions: objectName → QAction (ACTION_NAMES).
        editor: the open DeviceEditor, if any; preview: the open ImportPreviewDialog, if any.
        confirm / resolve_conflict / choose_file: injectable questions (tests answer them).
        tasks: engine reloads still running.

    Signals:
        saved(object): an Edit was written to the file (before the engine reloads it).
        applied(object): the engine's CommandResult for the reload after an edit.
    """

    saved = Signal(object)
    applied = Signal(object)

    def __init__(self, window: MainWindow, *, confirm: Confirm | None = None,
                 resolve_conflict: ResolveConflict | None = None, choose_file: ChooseFile | None = None) -> None:
        super().__init__(window)
        self.setObjectName("device_actions")
        self.window = window
        self.confirm: Confirm = confirm or default_confirm(window)
        self.resolve_conflict: ResolveConflict = resolve_conflict or default_resolve_conflict(window)
        self.choose_file: ChooseFile = choose_file or default_choose_file(window)
        self.editor: DeviceEditor | None = None
        self.preview: ImportPreviewDialog | None = None
        self.tasks: set[asyncio.Future[Any]] = set()
        self.actions: dict[str, QAction] = {}

        def make(name: str, text: str, tip: str, slot: Callable[[], object]) -> None:
            self.actions[name] = make_action(window, name, text, tip, slot)

        make("action_add_device", "Add device…", "Add a device to the configuration", self.add_device)
        make("action_edit_device", "Edit device…", "Edit the selected device's configuration", self.edit_device)
        make("action_duplicate_device", "Duplicate device…", "Add a device that starts as a copy of the selected one",
             self.duplicate_device)
        make("action_remove_device", "Remove device…", "Remove the selected devices from the configuration "
             "(their history stays in the journal)", self.remove_device)
        make("action_import_devices", "Import devices…", "Add devices from a CSV file or a TOML fragment",
             lambda: self.import_devices())
        make("action_export_devices", "Export devices…",
             "Save the selected devices (or all) as CSV with the import columns", lambda: self.export_devices())
        window.table.selectionModel().selectionChanged.connect(self.refresh_state)
        window.config_watch.changed.connect(self._on_config_watch_changed)
        window.closed.connect(self._on_window_closed)
        self.refresh_state()
        if is_demo(window.engine):
            path = self.config_path()
            window.setWindowTitle(f"Faultwatch — demo: device edits go to a copy ({path})" if path
                                  else "Faultwatch — demo: device edits go to a copy")

    # ---- wiring
    def add_to_menu(self, menu: QMenu) -> None:
        menu.addSeparator()
        for name in ACTION_NAMES:
            menu.addAction(self.actions[name])

    def refresh_state(self, *_args: Any) -> None:
        has = bool(self.window.selected_ids())
        single = len(self.window.selected_ids()) == 1
        can = self.config_path() is not None
        self.actions["action_add_device"].setEnabled(can)
        self.actions["action_import_devices"].setEnabled(can)
        self.actions["action_export_devices"].setEnabled(can)
        self.actions["action_edit_device"].setEnabled(can and single)
        self.actions["action_duplicate_device"].setEnabled(can and single)
        self.actions["action_remove_device"].setEnabled(can and has)

    def config_path(self) -> str | None:
        return self.window.engine.config_path or None

    def demo_note(self) -> str:
        if not is_demo(self.window.engine):
            return ""
        return (f"Demo: edits go to a copy of the demo configuration ({self.config_path()}); "
                "the demo starts from its own rack again next time.")

    def _read(self) -> ConfigFile | None:
        path = self.config_path()
        if path is None:
            self._message("✖ No configuration file to edit", 8000)
            return None
        try:
            return ConfigFile.read(path)
        except ConfigEditError as exc:
            self._message(f"✖ {exc}", 15_000)
            return None

    def _message(self, text: str, ms: int = 5000) -> None:
        self.window.statusBar().showMessage(text, ms)

    # ---- add / edit / duplicate
    def open_editor(self, cf: ConfigFile, *, original_id: str | None, table: Mapping[str, Any] | None) -> DeviceEditor:
        if self.editor is not None:
            self.editor.close()
        dialog = DeviceEditor(cf, original_id=original_id, table=table, demo_note=self.demo_note(),
                              error_colour=self.window.theme.critical, parent=self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.save_requested.connect(self._on_editor_save_requested)
        dialog.finished.connect(self._on_editor_finished)
        self.editor = dialog
        dialog.open()  # window-modal, never blocks the loop
        return dialog

    def add_device(self) -> DeviceEditor | None:
        cf = self._read()
        if cf is None:
            return None
        group = self.window.selected_snapshots()[0].group if self.window.selected_snapshots() else ""
        return self.open_editor(cf, original_id=None, table={"group": group} if group and group != "default" else {})

    def edit_device(self) -> DeviceEditor | None:
        ids = self.window.selected_ids()
        cf = self._read()
        if cf is None or len(ids) != 1:
            return None
        table = cf.service(ids[0])
        if table is None:
            self._message(f"✖ {ids[0]} is not in {Path(cf.path).name}", 8000)
            return None
        return self.open_editor(cf, original_id=ids[0], table=table)

    def duplicate_device(self) -> DeviceEditor | None:
        ids = self.window.selected_ids()
        cf = self._read()
        if cf is None or len(ids) != 1:
            return None
        table = cf.service(ids[0])
        if table is None:
            return None
        taken = set(cf.ids())
        n = 2
        while f"{ids[0]}-{n}" in taken:
            n += 1
        table["id"] = f"{ids[0]}-{n}"
        if "name" in table:
            table["name"] = f"{table['name']} (copy)"
        return self.open_editor(cf, original_id=None, table=table)

    def _on_editor_save_requested(self, edit: Edit) -> None:
        dialog = self.editor
        if dialog is None:
            return
        ok, message = self.save(dialog.config_file, edit, editor=dialog)
        if ok:
            dialog.accept()
        elif message:
            dialog.show_problem(message)

    def _on_editor_finished(self, _result: int) -> None:
        self.editor = None

    def _on_config_watch_changed(self, path: str) -> None:
        dialog = self.editor
        if dialog is None or Path(path).resolve() != dialog.config_file.path.resolve():
            return
        try:
            now = ConfigFile.read(path).digest
        except ConfigEditError:
            now = ""
        if now != dialog.config_file.digest:
            dialog.note_file_changed()

    def _on_window_closed(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.editor is not None:
            self.editor.reject()

    # ---- remove
    def remove_device(self) -> None:
        snaps = self.window.selected_snapshots()
        if not snaps:
            return
        cf = self._read()
        if cf is None:
            return
        from gui.actions import name_list

        who = name_list(snaps)
        ids = tuple(s.id for s in snaps)
        text = (f"Remove {who} ({', '.join(ids)}) from {cf.path.name}? "
                f"{'Its' if len(ids) == 1 else 'Their'} checks stop now; "
                f"{'its' if len(ids) == 1 else 'their'} history stays in the journal.")
        if not self.confirm("Remove device", text):
            return
        self.save(cf, Edit("remove", ids=ids))

    # ---- import / export
    def import_devices(self, path: str | None = None) -> ImportPreviewDialog | None:
        path = path or self.choose_file("open", "Import devices", "Devices (*.csv *.toml);;CSV (*.csv);;TOML (*.toml)")
        if not path:
            return None
        cf = self._read()
        if cf is None:
            return None
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            self._message(f"✖ cannot read {path}: {exc}", 10_000)
            return None
        preview = preview_toml(cf, text) if path.lower().endswith(".toml") else preview_csv(cf, text)
        dialog = ImportPreviewDialog(preview, path, self.window, error_colour=self.window.theme.critical)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self._on_preview_accepted(cf, preview))
        dialog.finished.connect(lambda _r: setattr(self, "preview", None))
        self.preview = dialog
        dialog.open()
        return dialog

    def _on_preview_accepted(self, cf: ConfigFile, preview: ImportPreview) -> None:
        if preview.good:
            self.save(cf, preview.edit())

    def export_devices(self, path: str | None = None) -> int:
        """Write the selected devices (all when none is selected) as CSV; returns how many."""
        cf = self._read()
        if cf is None:
            return 0
        ids = self.window.selected_ids() or None
        path = path or self.choose_file("save", "Export devices" if ids is None else f"Export {len(ids)} devices",
                                        "CSV (*.csv)")
        if not path:
            return 0
        text = export_csv(cf, ids)
        try:
            Path(path).write_text(text, encoding="utf-8")
        except OSError as exc:
            self._message(f"✖ cannot write {path}: {exc.strerror or exc}", 10_000)
            return 0
        count = len([sid for sid in cf.ids() if ids is None or sid in ids])
        self._message(f"Exported {count} devices to {path}")
        return count

    # ---- saving
    def save(self, cf: ConfigFile, edit: Edit, *, editor: DeviceEditor | None = None) -> tuple[bool, str]:
        """Write `edit`, resolving a conflict with the operator; then the engine reloads (a task).

        Returns (written, problem): problem is the one-line reason when nothing was written ("" when the
        operator cancelled). Without an editor to show it in, the problem goes to the status bar.
        """
        ok, problem = self._save(cf, edit, editor)
        if problem and editor is None:
            self._message(f"✖ not saved: {problem}", 15_000)
        return ok, problem

    def _save(self, cf: ConfigFile, edit: Edit, editor: DeviceEditor | None) -> tuple[bool, str]:
        force = False
        for _ in range(3):
            try:
                written, _config = save(cf, edit, force=force)
            except Conflict as exc:
                choice = self.resolve_conflict(
                    f"{exc}. Reload it and redo your edit ({edit.describe()}) on the new version, or overwrite "
                    f"it with yours? An overwritten version is kept in {cf.path.name}.bak/.")
                if choice == "cancel":
                    return False, ""
                if choice == "overwrite":
                    force = True
                    continue
                try:
                    cf = ConfigFile.read(cf.path)
                except ConfigEditError as err:
                    return False, str(err)
                if editor is not None:
                    editor.config_file = cf
                    verdict = editor.validate_now()
                    if not verdict.ok:
                        return False, "The file changed on disk: your edit does not fit the new version " \
                                      "(see the marked fields)."
                    edit = editor.edit()
                continue
            except ConfigEditError as exc:
                return False, str(exc)
            self.window.config_watch.mark_seen()  # our own write: no second, automatic reload
            self.saved.emit(edit)
            self._message(f"Saved {written.path.name}: {edit.describe()}; reloading…")
            task = asyncio.ensure_future(self._apply(str(written.path), edit))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            return True, ""
        return False, "the file keeps changing on disk; try again"

    async def _apply(self, path: str, edit: Edit) -> CommandResult:
        engine = self.window.engine
        detail = edit.describe()
        try:
            config_edit = getattr(engine, "config_edit", None)
            if config_edit is not None:
                result: CommandResult = await config_edit(path, ORIGIN, detail, edit.target)
            else:
                result = await engine.reload(path, ORIGIN)
        except Exception as exc:  # the engine raised instead of answering: still tell the operator
            log.exception("reload after edit failed")
            result = CommandResult(False, f"reload after edit failed: {exc}")
        self._message(result.message if result.ok else f"✖ {result.message}", 6000 if result.ok else 15_000)
        if not result.ok:
            self.window.config_notice.show_error(result.message)
        self.applied.emit(result)
        self.window.bridge.poll()
        return result

    async def wait_idle(self) -> None:
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
