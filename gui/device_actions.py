"""Device menu: add, edit, duplicate, remove, import and export devices, and what saving means.

The controller between the window, the device editor and a device store (core/config_store.py). The
store is chosen by who owns the device: the console's own engine's file (written here atomically, with
backups, then reloaded and journaled as a `config_edit` action with origin "gui"), or an attached
engine's file (through its API with this console's token; the engine validates, writes, reloads and
journals the edit with origin gui@<host>). Either way a write based on a version that changed since
refuses, and the operator chooses: reload and redo, or overwrite. In the demo, the file is the demo's
generated copy in the state directory and the window says so.

A store answers at once (the local file) or later (an engine over the network); the flows here take
both the same way (`_then`), and a question to the operator is never asked inside a running task.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, Sequence, TypeVar

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QColor
from PySide6.QtWidgets import (QDialog, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QMenu, QMessageBox,
                               QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from core.config_edit import ConfigEditError, Edit, ImportPreview
from core.config_store import DeviceStore, LocalStore, StoreView, Written, is_conflict
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
ChooseEngine = Callable[[list[str]], int]  # engine names -> the index chosen, or -1
T = TypeVar("T")
MAX_REDO = 3
# An attached engine's file has no local watcher: while its editor is open, its digest is read this
# often, so a change made there is said at once, not only at Save (one small GET per interval).
STORE_WATCH_MS = 3000

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


def default_choose_engine(parent: QWidget | None) -> ChooseEngine:
    def choose(names: list[str]) -> int:
        from PySide6.QtWidgets import QInputDialog

        name, ok = QInputDialog.getItem(parent, "Which engine?", "Edit the devices of:", names, 0, False)
        return names.index(name) if ok and name in names else -1
    return choose


@dataclass(frozen=True, slots=True)
class Target:
    """Where an edit goes: the store, the ids inside it, and the prefix the window shows them with.

    Attributes:
        store: the device store.
        ids: the selected devices' ids as the store knows them ("plc-1", not "site-a/plc-1").
        prefix: "" for the console's own engine, "site-a/" for an attached one.
    """

    store: DeviceStore
    ids: tuple[str, ...] = ()
    prefix: str = ""


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
        confirm / resolve_conflict / choose_file / choose_engine: injectable questions (tests answer them).
        tasks: store calls and engine reloads still running.

    Signals:
        saved(object): an Edit was written (before the engine reloads it, for the console's own file).
        applied(object): the engine's CommandResult for the reload after an edit.
        failed(str): an edit was not made; carries the one-line reason shown to the operator.
    """

    saved = Signal(object)
    applied = Signal(object)
    failed = Signal(str)

    def __init__(self, window: MainWindow, *, confirm: Confirm | None = None,
                 resolve_conflict: ResolveConflict | None = None, choose_file: ChooseFile | None = None,
                 choose_engine: ChooseEngine | None = None) -> None:
        super().__init__(window)
        self.setObjectName("device_actions")
        self.window = window
        self.confirm: Confirm = confirm or default_confirm(window)
        self.resolve_conflict: ResolveConflict = resolve_conflict or default_resolve_conflict(window)
        self.choose_file: ChooseFile = choose_file or default_choose_file(window)
        self.choose_engine: ChooseEngine = choose_engine or default_choose_engine(window)
        self.editor: DeviceEditor | None = None
        self.preview: ImportPreviewDialog | None = None
        self.tasks: set[asyncio.Future[Any]] = set()
        self._deferred = 0  # callbacks scheduled after a task, not yet run (wait_idle waits for them)
        self.store_watch = QTimer(self)
        self.store_watch.setObjectName("editor_store_watch")
        self.store_watch.setInterval(STORE_WATCH_MS)
        self.store_watch.timeout.connect(self._on_store_watch_timeout)
        self._watching = False
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
        ids = self.window.selected_ids()
        can = self.config_path() is not None or bool(self._attached())
        can_selected = bool(ids) and self._owner_store(ids, quiet=True) is not None
        self.actions["action_add_device"].setEnabled(can)
        self.actions["action_import_devices"].setEnabled(can)
        self.actions["action_export_devices"].setEnabled(can)
        self.actions["action_edit_device"].setEnabled(can_selected and len(ids) == 1)
        self.actions["action_duplicate_device"].setEnabled(can_selected and len(ids) == 1)
        self.actions["action_remove_device"].setEnabled(can_selected)

    def config_path(self) -> str | None:
        return self.window.engine.config_path or None

    def demo_note(self) -> str:
        if not is_demo(self.window.engine):
            return ""
        return (f"Demo: edits go to a copy of the demo configuration ({self.config_path()}); "
                "the demo starts from its own rack again next time.")

    def _message(self, text: str, ms: int = 5000) -> None:
        self.window.statusBar().showMessage(text, ms)

    # ---- which store
    def local_store(self) -> LocalStore | None:
        path = self.config_path()
        if path is None:
            return None
        return LocalStore(path, apply=self._apply_local, on_written=self.window.config_watch.mark_seen)

    def _attached(self) -> list[Any]:
        """The attached engines that take device edits (each offers a device store)."""
        return [e for e in getattr(self.window.engine, "attached", []) if hasattr(e, "device_store")]

    def _label(self, engine: Any) -> str:
        label_of = getattr(self.window.engine, "label_of", None)
        return str(label_of(engine)) if label_of is not None else ""

    def _owner_store(self, ids: Sequence[str], *, quiet: bool = False) -> Target | None:
        """The store of the engine owning every id in `ids` (None, and a message, if there is none)."""
        owner_of = getattr(self.window.engine, "owner_of", None)
        if owner_of is None:
            local = self.local_store()
            if local is None and not quiet:
                self._message("✖ No configuration file to edit", 8000)
            return None if local is None else Target(local, tuple(ids))
        owners = [owner_of(i) for i in ids]
        engines = {id(o[0]) for o in owners if o is not None}
        if None in owners or len(engines) != 1:
            if not quiet:
                self._message("✖ Select devices of one engine to edit them together", 8000)
            return None
        engine, _raw, label = owners[0]
        raw_ids = tuple(o[1] for o in owners if o is not None)
        if engine is getattr(self.window.engine, "local", None):
            local = self.local_store()
            if local is None and not quiet:
                self._message("✖ No configuration file to edit", 8000)
            return None if local is None else Target(local, raw_ids)
        make = getattr(engine, "device_store", None)
        if make is None:
            return None
        return Target(make(), raw_ids, f"{label}/" if label else "")

    def target(self, ids: Sequence[str] | None = None) -> Target | None:
        """Where an edit of `ids` goes (the selection's owner; with no ids, the one engine, or a chosen one)."""
        if ids:
            return self._owner_store(ids)
        local = self.local_store()
        attached = self._attached()
        choices: list[tuple[str, Callable[[], Target]]] = []
        if local is not None:
            choices.append((f"this console's engine ({local.name})", lambda: Target(local)))
        for engine in attached:
            label = self._label(engine) or str(getattr(engine, "name", "engine"))
            choices.append((label, lambda e=engine, p=label: Target(e.device_store(), (), f"{p}/")))
        if not choices:
            self._message("✖ No configuration file to edit", 8000)
            return None
        if len(choices) == 1:
            return choices[0][1]()
        index = self.choose_engine([name for name, _ in choices])
        return choices[index][1]() if 0 <= index < len(choices) else None

    # ---- answers now or later
    def _then(self, value: Any, done: Callable[[Any], T], failed: Callable[[ConfigEditError], object] | None = None
              ) -> T | None:
        """Call `done` with a store's answer: now if it is here (returning what `done` returns), else once it
        arrives (returning None). A ConfigEditError goes to `failed` (default: the status bar). After a wait,
        both run outside the task, so they may ask the operator (a modal question)."""
        fail = failed or self._problem
        if not inspect.isawaitable(value):
            return done(value)
        loop = asyncio.get_event_loop()

        def later(call: Callable[[Any], object], arg: Any) -> None:
            self._deferred += 1

            def run() -> None:
                self._deferred -= 1
                call(arg)
            loop.call_soon(run)

        async def wait() -> None:
            try:
                answer = await value
            except ConfigEditError as exc:
                later(fail, exc)
                return
            later(done, answer)
        task = asyncio.ensure_future(wait())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return None

    def _call(self, make: Callable[[], Any], done: Callable[[Any], T],
              failed: Callable[[ConfigEditError], object] | None = None) -> T | None:
        """`_then` over a store call that may also refuse at once (the local file)."""
        try:
            value = make()
        except ConfigEditError as exc:
            (failed or self._problem)(exc)
            return None
        return self._then(value, done, failed)

    def _problem(self, exc: ConfigEditError | str) -> None:
        text = str(exc)
        self.failed.emit(text)
        self._message(f"✖ {text}", 15_000)

    # ---- add / edit / duplicate
    def open_editor(self, view: StoreView, *, original_id: str | None, table: Mapping[str, Any] | None,
                    store: DeviceStore | None = None) -> DeviceEditor:
        if self.editor is not None:
            self.editor.close()
        dialog = DeviceEditor(view, original_id=original_id, table=table, demo_note=self.demo_note(),
                              error_colour=self.window.theme.critical, store=store, parent=self.window)
        dialog.setWindowTitle(f"{dialog.windowTitle()} — {dialog.store.name}")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.save_requested.connect(self._on_editor_save_requested)
        dialog.finished.connect(self._on_editor_finished)
        self.editor = dialog
        if getattr(view, "path", None) is None:
            self.store_watch.start()  # a file elsewhere: no watcher here tells us it changed
        dialog.open()  # window-modal, never blocks the loop
        return dialog

    def _on_store_watch_timeout(self) -> None:
        dialog = self.editor
        if dialog is None:
            self.store_watch.stop()
            return
        if self._watching:
            return  # the last read has not come back yet

        def read(view: StoreView) -> None:
            self._watching = False
            if self.editor is dialog and view.digest != dialog.config_file.digest:
                dialog.note_file_changed()

        def unread(_exc: ConfigEditError) -> None:
            self._watching = False  # an engine away is said when it matters (validation, Save)
        self._watching = True
        self._call(dialog.store.read, read, unread)

    def add_device(self) -> DeviceEditor | None:
        snaps = self.window.selected_snapshots()
        target = self.target([snaps[0].id] if snaps else None)
        if target is None:
            return None
        group = snaps[0].group if snaps else ""
        if target.prefix and group.startswith(target.prefix):
            group = group[len(target.prefix):]
        table = {"group": group} if group and group != "default" else {}
        return self._call(target.store.read, lambda view: self.open_editor(view, original_id=None, table=table,
                                                                           store=target.store))

    def _one_selected(self) -> tuple[Target, str] | None:
        """The store and (store-local) id of the one selected device, or None."""
        ids = self.window.selected_ids()
        if len(ids) != 1:
            return None
        target = self.target(ids)
        return None if target is None else (target, target.ids[0])

    def edit_device(self) -> DeviceEditor | None:
        selected = self._one_selected()
        if selected is None:
            return None
        target, sid = selected

        def opened(view: StoreView) -> DeviceEditor | None:
            table = view.service(sid)
            if table is None:
                self._message(f"✖ {sid} is not in {view.name}", 8000)
                return None
            return self.open_editor(view, original_id=sid, table=table, store=target.store)
        return self._call(target.store.read, opened)

    def duplicate_device(self) -> DeviceEditor | None:
        selected = self._one_selected()
        if selected is None:
            return None
        target, sid = selected

        def opened(view: StoreView) -> DeviceEditor | None:
            table = view.service(sid)
            if table is None:
                return None
            taken = set(view.ids())
            n = 2
            while f"{sid}-{n}" in taken:
                n += 1
            table["id"] = f"{sid}-{n}"
            if "name" in table:
                table["name"] = f"{table['name']} (copy)"
            return self.open_editor(view, original_id=None, table=table, store=target.store)
        return self._call(target.store.read, opened)

    def _on_editor_save_requested(self, edit: Edit) -> None:
        dialog = self.editor
        if dialog is None:
            return
        self.save(dialog.store, dialog.config_file, edit, editor=dialog)

    def _on_editor_finished(self, _result: int) -> None:
        self.editor = None
        self.store_watch.stop()

    def _on_config_watch_changed(self, path: str) -> None:
        dialog = self.editor
        file = getattr(dialog.config_file, "path", None) if dialog is not None else None
        if dialog is None or file is None or Path(path).resolve() != Path(file).resolve():
            return
        try:
            now = LocalStore(path).read().digest
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
        target = self.target([s.id for s in snaps])
        if target is None:
            return
        from gui.actions import name_list

        who = name_list(snaps)
        ids = target.ids

        def ask(view: StoreView) -> None:
            text = (f"Remove {who} ({', '.join(ids)}) from {view.name}? "
                    f"{'Its' if len(ids) == 1 else 'Their'} checks stop now; "
                    f"{'its' if len(ids) == 1 else 'their'} history stays in the journal.")
            if self.confirm("Remove device", text):
                self.save(target.store, view, Edit("remove", ids=ids))
        self._call(target.store.read, ask)

    # ---- import / export
    def import_devices(self, path: str | None = None) -> ImportPreviewDialog | None:
        path = path or self.choose_file("open", "Import devices", "Devices (*.csv *.toml);;CSV (*.csv);;TOML (*.toml)")
        if not path:
            return None
        target = self.target()
        if target is None:
            return None
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            self._message(f"✖ cannot read {path}: {exc}", 10_000)
            return None
        toml = path.lower().endswith(".toml")
        store = target.store

        def previewed(view: StoreView) -> Any:
            return self._call(lambda: store.preview_import(view, text, toml),
                              lambda preview: self._show_preview(store, view, text, toml, preview, path))
        return self._call(store.read, previewed)

    def _show_preview(self, store: DeviceStore, view: StoreView, text: str, toml: bool, preview: ImportPreview,
                      path: str) -> ImportPreviewDialog:
        dialog = ImportPreviewDialog(preview, path, self.window, error_colour=self.window.theme.critical)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self._on_preview_accepted(store, view, text, toml, preview))
        dialog.finished.connect(lambda _r: setattr(self, "preview", None))
        self.preview = dialog
        dialog.open()
        return dialog

    def _on_preview_accepted(self, store: DeviceStore, view: StoreView, text: str, toml: bool,
                             preview: ImportPreview) -> None:
        if not preview.good:
            return
        current = [preview]  # a redo previews the rows again on the new version

        def write(v: StoreView, force: bool) -> Any:
            return store.import_rows(v, text, toml, current[0], force=force)

        def redo(v: StoreView, go: Callable[[StoreView], None]) -> None:
            def again(p: ImportPreview) -> None:
                current[0] = p
                if p.good:
                    go(v)
                else:
                    self._problem("the file changed: none of the rows can be added to the new version")
            self._call(lambda: store.preview_import(v, text, toml), again)
        self._write(store, view, preview.edit(), write, redo, None, 0, False)

    def export_devices(self, path: str | None = None) -> int | None:
        """Write the selected devices (all when none is selected) as CSV; returns how many (None: on its way)."""
        selected = self.window.selected_ids() or None
        target = self.target(selected)
        if target is None:
            return 0
        ids = list(target.ids) or None
        path = path or self.choose_file("save", "Export devices" if ids is None else f"Export {len(ids)} devices",
                                        "CSV (*.csv)")
        if not path:
            return 0
        store = target.store

        def exported(view: StoreView, text: str) -> int:
            try:
                Path(path).write_text(text, encoding="utf-8")
            except OSError as exc:
                self._message(f"✖ cannot write {path}: {exc.strerror or exc}", 10_000)
                return 0
            count = len([sid for sid in view.ids() if ids is None or sid in ids])
            self._message(f"Exported {count} devices to {path}")
            return count
        return self._call(store.read, lambda view: self._call(lambda: store.export(view, ids),
                                                              lambda text: exported(view, text)))

    # ---- saving
    def save(self, store: DeviceStore, view: StoreView, edit: Edit, *, editor: DeviceEditor | None = None) -> None:
        """Write `edit` to `store`, resolving a conflict with the operator; then the engine applies it.

        A problem (a refused token, an unreachable engine, a file the loader refuses) is shown in the
        editor, which stays open with what was typed, or in the status bar; `failed` carries it.
        """
        def write(v: StoreView, force: bool) -> Any:
            return store.write(v, current[0], force=force)
        current = [edit]

        def redo(v: StoreView, go: Callable[[StoreView], None]) -> None:
            if editor is None:
                go(v)
                return
            editor.config_file = v

            def verdict(result: Any) -> None:
                if not result.ok:
                    self._fail(editor, "The file changed: your edit does not fit the new version "
                                       "(see the marked fields).")
                    return
                current[0] = editor.edit()
                go(v)
            editor.validate_then(verdict)
        self._write(store, view, edit, write, redo, editor, 0, False)

    def _write(self, store: DeviceStore, view: StoreView, edit: Edit, write: Callable[[StoreView, bool], Any],
               redo: Callable[[StoreView, Callable[[StoreView], None]], None], editor: DeviceEditor | None,
               attempt: int, force: bool) -> None:
        def failed(exc: ConfigEditError) -> None:
            if not is_conflict(exc):
                self._fail(editor, str(exc))
                return
            if attempt >= MAX_REDO:
                self._fail(editor, "the file keeps changing; try again")
                return
            choice = self.resolve_conflict(
                f"{exc}. Reload it and redo your edit ({edit.describe()}) on the new version, or overwrite "
                f"it with yours? {store.overwrite_note}".rstrip())
            if choice == "cancel":
                return
            if choice == "overwrite":
                self._write(store, view, edit, write, redo, editor, attempt + 1, True)
                return
            self._call(store.read, lambda v: redo(v, lambda v2: self._write(store, v2, edit, write, redo, editor,
                                                                            attempt + 1, False)),
                       lambda e: self._fail(editor, str(e)))
        self._call(lambda: write(view, force), lambda w: self._written(store, w, edit, editor), failed)

    def _fail(self, editor: DeviceEditor | None, message: str) -> None:
        self.failed.emit(message)
        if editor is not None and editor is self.editor:
            editor.show_problem(message)
        else:
            self._message(f"✖ not saved: {message}", 15_000)

    def _written(self, store: DeviceStore, written: Written, edit: Edit, editor: DeviceEditor | None) -> None:
        self.saved.emit(edit)
        self._message(f"Saved {store.name}: {edit.describe()}; reloading…")
        if editor is not None:
            editor.accept()
        self._then(written.applied, self._on_applied)

    def _on_applied(self, result: CommandResult) -> CommandResult:
        self._message(result.message if result.ok else f"✖ {result.message}", 6000 if result.ok else 15_000)
        if not result.ok:
            self.window.config_notice.show_error(result.message)
        self.applied.emit(result)
        self.window.bridge.poll()
        return result

    async def _apply_local(self, path: str, edit: Edit) -> CommandResult:
        """The console's own engine reloads the written file and journals the edit."""
        engine = self.window.engine
        local = getattr(engine, "local", None) or engine
        detail = edit.describe()
        try:
            config_edit = getattr(local, "config_edit", None)
            if config_edit is not None:
                result: CommandResult = await config_edit(path, ORIGIN, detail, edit.target)
            else:
                result = await local.reload(path, ORIGIN)
        except Exception as exc:  # the engine raised instead of answering: still tell the operator
            log.exception("reload after edit failed")
            result = CommandResult(False, f"reload after edit failed: {exc}")
        return result

    async def wait_idle(self) -> None:
        while self.tasks or self._deferred:
            if self.tasks:
                await asyncio.gather(*list(self.tasks), return_exceptions=True)
            else:
                await asyncio.sleep(0)
