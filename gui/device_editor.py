"""The device editor dialog: one `[[services]]` entry as a form, validated live by the config loader.

The form is generated from declarations, not written per check type: the check type's settings
dataclass (core/checks/<type>.py), a protocol restart action's settings, and the three overridable
sections each give their fields (name, type, doc as tooltip, default as placeholder). Every change is
validated (debounced) by the dialog's device store (core/config_store.py) — the loader's own rules,
in this process for the console's own file, or the attached engine's loader over its API — and each
wrong field shows the loader's message under it; Save stays disabled while anything is wrong or a
verdict is still on its way. Writing is the controller's job (gui/device_actions.py); this dialog only
produces an `Edit`, and does not know which store it has.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import re
import shlex
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping, get_args, get_origin

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QCompleter, QDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QLineEdit, QPushButton, QScrollArea, QStackedWidget, QTabWidget, QVBoxLayout, QWidget)

from core.checks.registry import check_types, restart_types
from core.config import OVERRIDABLE, SECTIONS, SERVICE_KEYS
from core.config_edit import ConfigEditError, Edit, FieldError, Validation, toml_inline
from core.config_store import DeviceStore, LocalStore, StoreView
from core.describe import format_ms

log = logging.getLogger("gui.editor")

VALIDATE_DELAY_MS = 150
_HTTP_KEYS = {"endpoint", "health_path", "backup_endpoints", "tls_verify", "ca_bundle"}
# Names the service-level fields use; a check setting with one of these names gets "editor_check_<name>".
_RESERVED = {"id", "name", "group", "tags", "check_type", "endpoint", "health_path", "backup_endpoints", "tls_verify",
             "ca_bundle", "heartbeat", "test", "save", "cancel", "errors", "restart_kind", "restart_method",
             "restart_url", "restart_command", "demo_note", "test_result", "overrides"}


@dataclass(slots=True)
class EditorField:
    """One input of the form.

    Attributes:
        key: the key path it writes in the entry (`check.port`, `fault_detection.timeout_seconds`).
        widget: QLineEdit, QCheckBox or QComboBox (objectName `editor_…`).
        error: the label under it that shows the loader's message (objectName `<widget>_error`).
        annotation: the declared type (how text becomes a value).
        default: the declared default (a value equal to it is not written unless the file had the key).
        inherit: an override field: empty means "inherit the global section".
    """

    key: str
    widget: QWidget
    error: QLabel
    annotation: Any
    default: Any
    inherit: bool = False


def _non_none(annotation: Any) -> list[Any]:
    if isinstance(annotation, types.UnionType) or get_origin(annotation) is typing.Union:
        return [a for a in get_args(annotation) if a is not type(None)]
    return [annotation]


def _scalar(text: str) -> Any:
    """A number or boolean if the text is one in TOML, else the text (the loader judges the type)."""
    import tomllib

    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    return value if isinstance(value, (int, float, bool)) else text


def text_to_value(text: str, annotation: Any, key: str = "") -> Any:
    """What a text box means for a field of type `annotation` (None: leave the key out)."""
    text = text.strip()
    if not text:
        return None
    choices = _non_none(annotation)
    if len(choices) > 1:
        return _scalar(text)
    ann = choices[0]
    if ann is str:
        return text
    if get_origin(ann) is tuple:
        item = get_args(ann)[0]
        sep = r"[,\s]+" if item is not str or key.endswith("endpoints") else r"\s*,\s*"
        return [text_to_value(p, item) for p in re.split(sep, text) if p.strip()]
    return _scalar(text)


def value_to_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return ", ".join(value_to_text(v) for v in value)
    try:
        return toml_inline(value)
    except ValueError:
        return str(value)


def _get(table: Mapping[str, Any], key: str) -> Any:
    node: Any = table
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _put(table: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = table
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _keys(table: Mapping[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for k, v in table.items():
        path = f"{prefix}{k}"
        out.add(path)
        if isinstance(v, Mapping):
            out |= _keys(v, path + ".")
    return out


def _label(name: str) -> str:
    return name.replace("_", " ")


def _default_of(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


class DeviceEditor(QDialog):
    """Add or edit one device (objectName "device_editor").

    Attributes:
        config_file: the store's view the entry is validated against (replaced after "reload and redo").
        store: where validation and Test go (core/config_store.py); the local file when not given.
        original_id: the id of the entry being edited (None: a new entry).
        fields: key path → EditorField, for every input currently in the form.
        validation: the latest Validation (None until the first pass).
        test_task: the running Test, if any.

    Signals:
        save_requested(object): the operator pressed Save on a valid entry; carries the Edit.
        tested(object): a Test finished; carries the CheckResult.
    """

    save_requested = Signal(object)
    tested = Signal(object)

    def __init__(self, config_file: StoreView, *, original_id: str | None = None,
                 table: Mapping[str, Any] | None = None, demo_note: str = "",
                 run_check: Callable[[Any], Any] | None = None, error_colour: str = "#c8102e",
                 store: DeviceStore | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._error_colour = error_colour
        self.setObjectName("device_editor")
        self.config_file = config_file
        self.store: DeviceStore = store or LocalStore(str(getattr(config_file, "path", "")), run_check=run_check)
        self.validation_task: asyncio.Future[None] | None = None
        self._generation = 0
        self._after_validation: list[Callable[[Validation], None]] = []
        self.original_id = original_id
        self._original: dict[str, Any] = dict(table or {})
        self._original_keys = _keys(self._original)
        self.fields: dict[str, EditorField] = {}
        self.validation: Validation | None = None
        self.test_task: asyncio.Future[None] | None = None
        self._pending = False
        self._local_errors: dict[str, str] = {}
        self.setWindowTitle(f"Edit device {original_id}" if original_id else "Add device")
        self.setSizeGripEnabled(True)

        self._timer = QTimer(self)
        self._timer.setObjectName("editor_validate_timer")
        self._timer.setSingleShot(True)
        self._timer.setInterval(VALIDATE_DELAY_MS)
        self._timer.timeout.connect(self.validate_now)

        outer = QVBoxLayout(self)
        self.demo_note = QLabel(demo_note, self)
        self.demo_note.setObjectName("editor_demo_note")
        self.demo_note.setWordWrap(True)
        self.demo_note.setVisible(bool(demo_note))
        outer.addWidget(self.demo_note)
        self.file_notice = QLabel(self)
        self.file_notice.setObjectName("editor_file_changed")
        self.file_notice.setWordWrap(True)
        self.file_notice.hide()
        outer.addWidget(self.file_notice)

        body = QWidget(self)
        # Two columns: what the device is and how it is reached (left), how it is judged (right).
        columns = QHBoxLayout(body)
        columns.setContentsMargins(0, 0, 0, 0)
        column = QVBoxLayout()
        right = QVBoxLayout()
        columns.addLayout(column, 1)
        columns.addLayout(right, 1)
        scroll = QScrollArea(self)
        scroll.setObjectName("editor_scroll")
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        outer.addWidget(scroll, 1)

        # ---- device
        device = QGroupBox("Device", body)
        form = QFormLayout(device)
        self._line(form, "id", "editor_id", str, None, "Id")
        self._line(form, "name", "editor_name", str, None, "Name")
        group = self._line(form, "group", "editor_group", str, None, "Group (rack)")
        groups = sorted({str(s.get("group", "default")) for s in config_file.services()})
        assert isinstance(group, QLineEdit)
        group.setCompleter(QCompleter(groups, group))
        group.setPlaceholderText("default")
        tags = self._line(form, "tags", "editor_tags", tuple[str, ...], None, "Tags")
        assert isinstance(tags, QLineEdit)
        tags.setPlaceholderText("comma-separated")
        self.check_type = QComboBox(device)
        self.check_type.setObjectName("editor_check_type")
        for name, ct in check_types().items():
            self.check_type.addItem(name, name)
            self.check_type.setItemData(self.check_type.count() - 1, ct.doc, Qt.ItemDataRole.ToolTipRole)
        self.check_type.setToolTip(SERVICE_KEYS["check"])
        form.addRow("Check type", self.check_type)
        self._heartbeat = self._line(form, "heartbeat_interval_seconds", "editor_heartbeat", float, None,
                                     "Heartbeat every (s)")
        assert isinstance(self._heartbeat, QLineEdit)
        self._heartbeat.setPlaceholderText("none")
        column.addWidget(device)

        # ---- http endpoint (only for http checks)
        self.http_box = QGroupBox("HTTP endpoint", body)
        self.http_box.setObjectName("editor_http_box")
        hform = QFormLayout(self.http_box)
        endpoint = self._line(hform, "endpoint", "editor_endpoint", str, None, "Endpoint")
        assert isinstance(endpoint, QLineEdit)
        endpoint.setPlaceholderText("http://10.0.0.5:8080")
        hp = self._line(hform, "health_path", "editor_health_path", str, None, "Health path")
        assert isinstance(hp, QLineEdit)
        hp.setPlaceholderText("/health")
        backups = self._line(hform, "backup_endpoints", "editor_backup_endpoints", tuple[str, ...], None,
                             "Backup endpoints")
        assert isinstance(backups, QLineEdit)
        backups.setPlaceholderText("URLs, comma- or space-separated, in order of preference")
        self._check(hform, "tls_verify", "editor_tls_verify", True, "Verify TLS")
        self._line(hform, "ca_bundle", "editor_ca_bundle", str, None, "CA bundle")
        column.addWidget(self.http_box)

        # ---- check settings (generated from the type's declared settings)
        self.check_box = QGroupBox("Check settings", body)
        self.check_box.setObjectName("editor_check_box")
        self._check_form = QFormLayout(self.check_box)
        right.addWidget(self.check_box)

        # ---- restart action
        restart = QGroupBox("Restart action", body)
        rlayout = QVBoxLayout(restart)
        self.restart_kind = QComboBox(restart)
        self.restart_kind.setObjectName("editor_restart_kind")
        self.restart_kind.setToolTip(SERVICE_KEYS["restart"])
        self.restart_stack = QStackedWidget(restart)
        self.restart_stack.setObjectName("editor_restart_stack")
        rlayout.addWidget(self.restart_kind)
        rlayout.addWidget(self.restart_stack)
        self._restart_pages: dict[str, list[str]] = {}
        self._add_restart_page("", "none", lambda form: [])

        def http_page(f: QFormLayout) -> list[str]:
            m = self._choice(f, "restart.http.method", "editor_restart_method", ("POST", "PUT", "GET"), "POST", "Method")
            del m
            url = self._line(f, "restart.http.url", "editor_restart_url", str, None, "URL")
            assert isinstance(url, QLineEdit)
            url.setPlaceholderText("http://10.0.0.5:8080/restart")
            return ["restart.http.method", "restart.http.url"]
        self._add_restart_page("http", "HTTP request", http_page)

        def command_page(f: QFormLayout) -> list[str]:
            cmd = self._line(f, "restart.command", "editor_restart_command", str, None, "Command")
            assert isinstance(cmd, QLineEdit)
            cmd.setPlaceholderText("/usr/local/bin/relay-cycle --port 3   (run without a shell)")
            return ["restart.command"]
        self._add_restart_page("command", "local command", command_page)
        for name, rt in restart_types().items():
            self._add_restart_page(name, name.replace("_", " "),
                                   lambda f, n=name, cls=rt.settings: self._settings_fields(
                                       f, cls, f"restart.{n}", f"editor_restart_{n}_", inherit=None))
        column.addWidget(restart)

        # ---- overrides of the three seed sections
        self.overrides = QTabWidget(body)
        self.overrides.setObjectName("editor_overrides")
        for section in OVERRIDABLE:
            page = QWidget(self.overrides)
            pform = QFormLayout(page)
            globals_ = config_file.section(section)
            self._settings_fields(pform, SECTIONS[section], section, f"editor_{section}_", inherit=globals_)
            self.overrides.addTab(page, _label(section))
        obox = QGroupBox("Overrides for this device (empty: the file's global value)", body)
        QVBoxLayout(obox).addWidget(self.overrides)
        right.addWidget(obox)
        column.addStretch(1)
        right.addStretch(1)

        # ---- problems, test, buttons
        self.errors_label = QLabel(self)
        self.errors_label.setObjectName("editor_errors")
        self.errors_label.setWordWrap(True)
        self.errors_label.setTextFormat(Qt.TextFormat.PlainText)
        outer.addWidget(self.errors_label)
        self.test_result = QLabel(self)
        self.test_result.setObjectName("editor_test_result")
        self.test_result.setWordWrap(True)
        self.test_result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        outer.addWidget(self.test_result)
        buttons = QHBoxLayout()
        self.test_button = QPushButton("Test", self)
        self.test_button.setObjectName("editor_test")
        self.test_button.setToolTip("Run one check with the settings as entered (nothing is saved)")
        self.save_button = QPushButton("Save", self)
        self.save_button.setObjectName("editor_save")
        self.save_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setObjectName("editor_cancel")
        buttons.addWidget(self.test_button)
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.save_button)
        outer.addLayout(buttons)
        self.test_button.clicked.connect(self._on_test_button_clicked)
        self.save_button.clicked.connect(self._on_save_button_clicked)
        self.cancel_button.clicked.connect(self.reject)

        # ---- fill in
        self._load(self._original)
        self.check_type.currentIndexChanged.connect(self._on_check_type_changed)
        self.restart_kind.currentIndexChanged.connect(self._on_restart_kind_changed)
        self.resize(1040, 700)
        self.validate_now()
        # A new device starts at its id; an existing one at its name (its id rarely changes).
        self.fields["name" if original_id else "id"].widget.setFocus()

    # ------------------------------------------------------------------ building fields
    def _register(self, form: QFormLayout, key: str, widget: QWidget, label: str, tip: str, annotation: Any,
                  default: Any, inherit: bool = False) -> QWidget:
        error = QLabel(widget.parentWidget())
        error.setObjectName(f"{widget.objectName()}_error")
        error.setWordWrap(True)
        error.setProperty("role", "field_error")
        error.setStyleSheet(f"color: {self._error_colour};")
        error.hide()
        box = QWidget(widget.parentWidget())
        lay = QVBoxLayout(box)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(1)
        lay.addWidget(widget)
        lay.addWidget(error)
        widget.setToolTip(tip)
        widget.setAccessibleName(label)
        form.addRow(label, box)
        self.fields[key] = EditorField(key, widget, error, annotation, default, inherit)
        if isinstance(widget, QLineEdit):
            widget.textChanged.connect(self._on_field_changed)
        elif isinstance(widget, QCheckBox):
            widget.toggled.connect(self._on_field_changed)
        elif isinstance(widget, QComboBox):
            widget.currentIndexChanged.connect(self._on_field_changed)
        return widget

    def _line(self, form: QFormLayout, key: str, name: str, annotation: Any, default: Any, label: str,
              tip: str | None = None, inherit: bool = False) -> QWidget:
        w = QLineEdit(form.parentWidget())
        w.setObjectName(name)
        return self._register(form, key, w, label, tip or SERVICE_KEYS.get(key, ""), annotation, default, inherit)

    def _check(self, form: QFormLayout, key: str, name: str, default: bool, label: str, tip: str | None = None) -> QWidget:
        w = QCheckBox(form.parentWidget())
        w.setObjectName(name)
        w.setChecked(bool(default))
        return self._register(form, key, w, label, tip or SERVICE_KEYS.get(key, ""), bool, default)

    def _choice(self, form: QFormLayout, key: str, name: str, choices: tuple[Any, ...], default: Any, label: str,
                tip: str = "", inherit_text: str | None = None) -> QWidget:
        w = QComboBox(form.parentWidget())
        w.setObjectName(name)
        if inherit_text is not None:
            w.addItem(inherit_text, None)
        for c in choices:
            w.addItem(value_to_text(c), c)
        if inherit_text is None:
            w.setCurrentIndex(max(0, w.findData(default)))
        return self._register(form, key, w, label, tip, type(default) if default is not None else str, default,
                              inherit=inherit_text is not None)

    def _settings_fields(self, form: QFormLayout, cls: type, key_prefix: str, name_prefix: str,
                         inherit: Mapping[str, Any] | None, within: str = "") -> list[str]:
        """Fields for every declared setting of `cls` (a frozen settings dataclass); returns their keys.

        `inherit` (override sections): the file's global values; empty inputs inherit them.
        """
        hints = typing.get_type_hints(cls)
        made: list[str] = []
        for f in dataclasses.fields(cls):
            ann = hints[f.name]
            key = f"{key_prefix}.{f.name}"
            name = f"{name_prefix}{f.name}"
            default = _default_of(f)
            doc = str(f.metadata.get("doc", ""))
            if f.metadata.get("required"):
                doc += " (required)"
            label = _label(f.name)
            inner = _non_none(ann)
            if len(inner) == 1 and dataclasses.is_dataclass(inner[0]) and isinstance(inner[0], type):
                sub = QGroupBox(label, form.parentWidget())
                sub.setObjectName(f"{name}_box")
                sub.setToolTip(doc)
                sform = QFormLayout(sub)
                made += self._settings_fields(sform, inner[0], key, f"{name}_", None,
                                              within=label if type(None) in get_args(ann) else "")
                form.addRow(sub)
                continue
            if inherit is not None:
                shown = inherit.get(f.name, default)
                if ann is bool or get_origin(ann) is Literal:
                    choices = (True, False) if ann is bool else get_args(ann)
                    self._choice(form, key, name, choices, default, label, doc,
                                 inherit_text=f"(inherit: {value_to_text(shown)})")
                else:
                    w = self._line(form, key, name, ann, default, label, doc, inherit=True)
                    assert isinstance(w, QLineEdit)
                    w.setPlaceholderText(f"inherit: {value_to_text(shown)}")
            elif ann is bool:
                self._check(form, key, name, bool(default), label, doc)
            elif get_origin(ann) is Literal:
                self._choice(form, key, name, get_args(ann), default, label, doc)
            else:
                w = self._line(form, key, name, ann, default, label, doc)
                assert isinstance(w, QLineEdit)
                if default not in (None, "", ()):
                    w.setPlaceholderText(f"default: {value_to_text(default)}")
                elif f.metadata.get("required"):
                    w.setPlaceholderText(f"required when {within} is used" if within else "required")
            made.append(key)
        return made

    def _add_restart_page(self, kind: str, text: str, build: Callable[[QFormLayout], list[str]]) -> None:
        page = QWidget(self.restart_stack)
        form = QFormLayout(page)
        form.setContentsMargins(0, 0, 0, 0)
        self._restart_pages[kind] = build(form)
        self.restart_stack.addWidget(page)
        self.restart_kind.addItem(text, kind)

    def _build_check_fields(self, type_name: str) -> None:
        """(Re)build the check settings form for `type_name`, keeping values of same-named fields."""
        kept = {k: f.widget.text() for k, f in self.fields.items()
                if k.startswith("check.") and isinstance(f.widget, QLineEdit) and f.widget.text()}
        for key in [k for k in self.fields if k.startswith("check.")]:
            del self.fields[key]
        while self._check_form.rowCount():
            self._check_form.removeRow(0)
        ct = check_types()[type_name]
        self.check_box.setTitle(f"Check settings ({type_name}): {ct.doc}")
        self.check_box.setToolTip(ct.doc)
        names = {f.name for f in dataclasses.fields(ct.settings)}
        # One prefix per type keeps objectNames predictable: editor_host, editor_port, editor_register…;
        # a type with a setting named like a device field (a dns "name") gets editor_check_… for all.
        clash = bool(names & _RESERVED)
        made = self._settings_fields(self._check_form, ct.settings, "check", "editor_check_" if clash else "editor_",
                                     None)
        self.check_box.setVisible(bool(made))
        for key, text in kept.items():
            f = self.fields.get(key)
            if f is not None and isinstance(f.widget, QLineEdit):
                f.widget.setText(text)
        self.http_box.setVisible(type_name == "http")

    # ------------------------------------------------------------------ values in and out
    def _load(self, table: Mapping[str, Any]) -> None:
        check = table.get("check") if isinstance(table.get("check"), Mapping) else {}
        assert isinstance(check, Mapping)
        type_name = str(check.get("type", "http"))
        if type_name not in check_types():
            type_name = "http"
        self.check_type.blockSignals(True)
        self.check_type.setCurrentIndex(max(0, self.check_type.findData(type_name)))
        self.check_type.blockSignals(False)
        self._build_check_fields(type_name)
        restart = table.get("restart") if isinstance(table.get("restart"), Mapping) else {}
        assert isinstance(restart, Mapping)
        kind = next(iter(restart), "") if restart else ""
        self.restart_kind.blockSignals(True)
        self.restart_kind.setCurrentIndex(max(0, self.restart_kind.findData(kind)))
        self.restart_stack.setCurrentIndex(self.restart_kind.currentIndex())
        self.restart_kind.blockSignals(False)
        for key, f in self.fields.items():
            value = _get(table, key)
            if key == "restart.command" and isinstance(value, list):
                value = shlex.join(str(v) for v in value)
            self._set_widget(f, value)

    def _set_widget(self, f: EditorField, value: Any) -> None:
        w = f.widget
        w.blockSignals(True)
        try:
            if isinstance(w, QLineEdit):
                w.setText(value_to_text(value))
            elif isinstance(w, QCheckBox):
                w.setChecked(bool(f.default) if value is None else bool(value))
            elif isinstance(w, QComboBox):
                if value is None:
                    w.setCurrentIndex(0 if f.inherit else max(0, w.findData(f.default)))
                else:
                    i = w.findData(value)
                    w.setCurrentIndex(i if i >= 0 else 0)
        finally:
            w.blockSignals(False)

    def table(self) -> dict[str, Any]:
        """The entry as entered (TOML-shaped plain values); keys left empty are left out."""
        self._local_errors = {}
        out: dict[str, Any] = {}
        type_name = str(self.check_type.currentData())
        restart_kind = str(self.restart_kind.currentData() or "")
        restart_keys = set(self._restart_pages.get(restart_kind, []))
        for key, f in self.fields.items():
            if key.startswith("restart.") and key not in restart_keys:
                continue
            w = f.widget
            if isinstance(w, QLineEdit):
                if key == "restart.command":
                    try:
                        value: Any = shlex.split(w.text()) if w.text().strip() else None
                    except ValueError as exc:
                        self._local_errors[key] = f"cannot split into arguments: {exc}"
                        value = None
                else:
                    value = text_to_value(w.text(), f.annotation, key)
                if value is None:
                    continue
            elif isinstance(w, QCheckBox):
                value = w.isChecked()
                if value == f.default and key not in self._original_keys:
                    continue
            elif isinstance(w, QComboBox):
                value = w.currentData()
                if value is None or (not f.inherit and value == f.default and key not in self._original_keys):
                    continue
            else:  # pragma: no cover - no other widget kinds are made
                continue
            _put(out, key, value)
        if type_name != "http" or "check" in self._original or "check" in out:
            check = dict(out.get("check", {}))
            out["check"] = {"type": type_name, **check}
        if restart_kind and restart_kind not in out.get("restart", {}):
            _put(out, f"restart.{restart_kind}", {})
        return out

    def edit(self) -> Edit:
        table = self.table()
        if self.original_id is None:
            return Edit("add", tables=(table,))
        return Edit("replace", ids=(self.original_id,), tables=(table,))

    # ------------------------------------------------------------------ validation
    def _on_field_changed(self, *_args: Any) -> None:
        self._pending = True
        self.save_button.setEnabled(False)
        self._timer.start()

    def _on_check_type_changed(self, _index: int) -> None:
        self._build_check_fields(str(self.check_type.currentData()))
        self._on_field_changed()

    def _on_restart_kind_changed(self, index: int) -> None:
        self.restart_stack.setCurrentIndex(index)
        self._on_field_changed()

    def validate_now(self) -> Validation | None:
        """Validate what is entered with the loader's rules and mark every wrong field.

        Returns the verdict, or None when it comes later (a remote engine's loader): then Save stays
        disabled until it arrives, and a newer edit makes an older verdict moot.
        """
        self._timer.stop()
        self._pending = False
        table = self.table()
        local = dict(self._local_errors)
        self._generation += 1
        if self.validation_task is not None and not self.validation_task.done():
            self.validation_task.cancel()
        try:
            answer = self.store.validate(self.config_file, table, self.original_id)
        except ConfigEditError as exc:
            answer = Validation((FieldError("", str(exc)),))
        if inspect.isawaitable(answer):
            self.save_button.setEnabled(False)
            self.validation_task = asyncio.ensure_future(self._validate_later(answer, self._generation, local))
            return None
        assert isinstance(answer, Validation)
        return self._show(answer, local)

    def validate_then(self, then: Callable[[Validation], None]) -> None:
        """Validate now and call `then` with the verdict (at once, or when it arrives)."""
        v = self.validate_now()
        if v is not None:
            then(v)
        else:
            self._after_validation.append(then)

    async def _validate_later(self, answer: Any, generation: int, local: dict[str, str]) -> None:
        try:
            v = await answer
        except asyncio.CancelledError:
            raise
        except ConfigEditError as exc:
            # The engine could not judge it (unreachable, refused): say so; what was typed stays.
            if generation == self._generation:
                self._show(Validation((FieldError("", str(exc)),)), local)
                self.show_problem(f"✖ {exc}")
                self._after_validation = []  # nothing is saved without a verdict
            return
        if generation != self._generation:
            return  # the form changed meanwhile: a newer verdict is on its way
        verdict = self._show(v, local)
        waiting, self._after_validation = self._after_validation, []
        for then in waiting:
            then(verdict)

    def _show(self, v: Validation, local_errors: dict[str, str]) -> Validation:
        local = tuple(v.errors) + tuple(FieldError(k, m) for k, m in local_errors.items())
        v = Validation(local, v.service if not local else None)
        self.validation = v
        unplaced: list[str] = []
        marked: set[str] = set()
        for e in v.errors:
            f = self.fields.get(e.field)
            if f is None or not self._shown(e.field):
                unplaced.append(str(e))
                continue
            if e.field in marked:
                continue
            marked.add(e.field)
            f.error.setText(e.message)
        for key, f in self.fields.items():
            wrong = key in marked
            f.error.setVisible(wrong)
            if not wrong:
                f.error.setText("")
            f.widget.setProperty("invalid", wrong)
            f.widget.setStyleSheet(f"border: 1px solid {self._error_colour};" if wrong else "")
            f.widget.setAccessibleDescription(f.error.text())
        n = len(v.errors)
        lines = [f"{n} problem{'s' if n != 1 else ''} to fix before saving"] if n else []
        lines += unplaced
        self.errors_label.setText("\n".join(lines))
        self.errors_label.setVisible(bool(lines))
        self.save_button.setEnabled(v.ok)
        return v

    def _shown(self, key: str) -> bool:
        """Whether the input for `key` is part of the form as it stands (type and restart kind)."""
        if key in _HTTP_KEYS:
            return self.check_type.currentData() == "http"
        if key.startswith("restart."):
            return key in self._restart_pages.get(str(self.restart_kind.currentData() or ""), [])
        return key in self.fields

    def field_error(self, object_name: str) -> str:
        """The message shown under the input named `object_name` ("" when it is fine)."""
        for f in self.fields.values():
            if f.widget.objectName() == object_name:
                return "" if f.error.isHidden() else f.error.text()
        raise KeyError(object_name)

    def note_file_changed(self) -> None:
        """The file changed on disk while this dialog is open: say so now, not only at Save."""
        self.file_notice.setText(f"⚠ {self.config_file.name} changed on disk since this dialog opened. "
                                 "Save will ask whether to redo your edit on the new version or overwrite it.")
        self.file_notice.show()

    def show_problem(self, message: str) -> None:
        """A problem found when saving (the whole file refused, a write failed)."""
        self.errors_label.setText(message)
        self.errors_label.show()

    # ------------------------------------------------------------------ buttons
    def _on_save_button_clicked(self) -> None:
        def then(v: Validation) -> None:
            if v.ok:
                self.save_requested.emit(self.edit())
        self.validate_then(then)

    def _on_test_button_clicked(self) -> None:
        self.start_test()

    def start_test(self) -> asyncio.Future[None] | None:
        """Run one check with the entry as entered; the result shows in `editor_test_result`."""
        self.validate_now()
        if self.test_task is not None and not self.test_task.done():
            return self.test_task
        try:
            # The store builds the check (the local file: here; an attached engine: on its host).
            pending = self.store.test(self.config_file, self.table())
        except ConfigEditError as exc:
            self.test_result.setText(str(exc))
            return None
        self.test_result.setText("Testing…")
        self.test_button.setEnabled(False)
        self.test_task = asyncio.ensure_future(self._test(pending))
        return self.test_task

    async def _test(self, pending: Any) -> None:
        try:
            result = await pending
        except asyncio.CancelledError:
            raise
        except ConfigEditError as exc:  # the engine refused or did not answer: one line, as it says
            self.test_result.setText(f"✖ test failed: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - a failed test is shown, never a crash
            log.exception("test check failed")
            self.test_result.setText(f"✖ test failed: {exc}")
            return
        finally:
            self.test_button.setEnabled(True)
        self.test_result.setText(describe_result(result))
        self.tested.emit(result)

    def done(self, r: int) -> None:
        for task in (self.test_task, self.validation_task):
            if task is not None and not task.done():
                task.cancel()
        super().done(r)


def describe_result(result: Any) -> str:
    """"HEALTHY · 3.2 ms · value 42" / "UNHEALTHY · 2000 ms · timeout after 2 s"."""
    status = getattr(result.status, "value", str(result.status)).upper()
    parts = [status, f"{format_ms(result.latency_ms)} ms"]
    if result.value is not None:
        parts.append(f"value {value_to_text(result.value)}")
    if result.http_status is not None:
        parts.append(f"HTTP {result.http_status}")
    if result.error:
        parts.append(result.error)
    return " · ".join(parts)
