"""The timeline: what happened, newest on top — time · device · kind · what happened · why/origin.

`TimelineModel` keeps the last `cap` events (plain Event values, newest first); core/describe.py's
`describe_event()` gives the two readable columns (the terminal stream uses the same words);
`TimelineFilterProxy` filters by device, kind and
text; `export_csv()` writes events to a CSV file (testable without Qt widgets). `TimelineView` is the
panel: filters, the table (objectName "timeline") and an Export button.
"""

from __future__ import annotations

import csv
import logging
import os
from datetime import datetime
from enum import IntEnum
from typing import Any, Callable, Iterable, Mapping, Sequence

from PySide6.QtCore import (QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex,
                            QSortFilterProxyModel, Qt, Signal)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QHeaderView,
                               QLabel, QLineEdit, QPushButton, QTableView, QVBoxLayout, QWidget)

from core.clock import iso_utc
from core.describe import describe_event
from core.events import (AlertState, EVENT_TYPES, ActionEvent, AlertEvent, AnomalyEvent, BreakerEvent, BreakerState, Event,
                         HeartbeatEvent, ProbeEvent, RebootEvent, RecoveryEvent, RecoveryOutcome, ServiceStatus)
from gui import palette

log = logging.getLogger("gui.timeline")

ModelIndex = QModelIndex | QPersistentModelIndex
EVENT_ROLE = Qt.ItemDataRole.UserRole + 1
DEFAULT_CAP = 5000
CSV_HEADER = ("time", "seq", "device", "device_name", "kind", "what", "why")


class TimelineColumn(IntEnum):
    TIME = 0
    DEVICE = 1
    KIND = 2
    WHAT = 3
    WHY = 4


HEADERS = ("Time", "Device", "Kind", "What happened", "Why / origin")


# ---------------------------------------------------------------- describing events (pure)

def event_role(event: Event) -> str:
    """The palette role an event row is tinted with (report by exception: most rows stay normal)."""
    if isinstance(event, ProbeEvent):
        if event.status is ServiceStatus.UNHEALTHY:
            return "critical"
        if event.status is ServiceStatus.DEGRADED:
            return "warning"
    elif isinstance(event, BreakerEvent):
        if event.blocked_by and not event.to_state.forced:
            return "normal"  # behind a down parent: its alarm is the parent's (gui/presentation.py)
        if event.to_state is BreakerState.OPEN:
            return "critical"
        if event.to_state is BreakerState.HALF_OPEN:
            return "warning"
        if isinstance(event.to_state, BreakerState) and event.to_state.forced:
            return "suppressed"
    elif isinstance(event, RecoveryEvent):
        if event.outcome in (RecoveryOutcome.FAILED, RecoveryOutcome.GAVE_UP):
            return "critical"
        return "info"
    elif isinstance(event, HeartbeatEvent):
        return "critical" if event.status == "missed" else "normal"
    elif isinstance(event, (AnomalyEvent, RebootEvent)):
        # A device that restarted by itself is worth a look even when it answers again at once.
        return "warning"
    elif isinstance(event, AlertEvent):
        if event.state is AlertState.FIRING:
            return {"critical": "critical", "warning": "warning"}.get(event.severity, "info")
    elif isinstance(event, ActionEvent):
        return "normal" if event.ok else "critical"
    return "normal"


def format_time(wall: float) -> str:
    """Local time for the table (technicians read local clocks); exports use ISO UTC."""
    return datetime.fromtimestamp(wall).strftime("%H:%M:%S")


def export_csv(events: Iterable[Event], path: str | os.PathLike[str],
               names: Mapping[str, str] | None = None) -> int:
    """Write events to `path` as CSV (time in ISO UTC); returns the number of rows written.

    Only the event's own readable fields are written: no headers, tokens or configuration.
    """
    names = names or {}
    count = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_HEADER)
        for event in events:
            what, why = describe_event(event)
            writer.writerow((iso_utc(event.wall), event.seq, event.service, names.get(event.service, ""),
                             event.KIND, what, why))
            count += 1
    return count


# ---------------------------------------------------------------- model

class TimelineModel(QAbstractTableModel):
    """Events, newest first, capped.

    Attributes:
        cap: the most events kept; older ones fall off the bottom.
        names: service id → display name (the window keeps it current).
        theme: palette theme for row tints.
    """

    def __init__(self, parent: QObject | None = None, cap: int = DEFAULT_CAP,
                 theme: palette.Theme = palette.LIGHT) -> None:
        super().__init__(parent)
        self.cap = cap
        self.names: dict[str, str] = {}
        self.theme = theme
        self._events: list[Event] = []  # newest first
        self._described: list[tuple[str, str]] = []
        # Keyed by (service, seq): with several engines attached, seqs repeat across engines, but
        # their services are qualified by engine ("site-a/plc-1"), and one engine never reuses a seq.
        self._seqs: set[tuple[str, int]] = set()

    def events(self) -> list[Event]:
        """All kept events, newest first."""
        return list(self._events)

    def event_at(self, row: int) -> Event:
        return self._events[row]

    def set_theme(self, theme: palette.Theme) -> None:
        self.theme = theme
        if self._events:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._events) - 1, len(HEADERS) - 1),
                                  [Qt.ItemDataRole.ForegroundRole])

    def add_events(self, events: Sequence[Event]) -> None:
        """Add live events (oldest first, as drained) on top; duplicates by journal seq are skipped."""
        fresh = [e for e in events if not (e.seq and (e.service, e.seq) in self._seqs)]
        if not fresh:
            return
        fresh = fresh[-self.cap:]
        newest_first = list(reversed(fresh))
        self.beginInsertRows(QModelIndex(), 0, len(newest_first) - 1)
        self._events[0:0] = newest_first
        self._described[0:0] = [describe_event(e) for e in newest_first]
        self._seqs.update((e.service, e.seq) for e in newest_first if e.seq)
        self.endInsertRows()
        self._trim()

    def load_history(self, events: Sequence[Event]) -> None:
        """Merge journal history (any order) with what is shown; keeps newest first."""
        fresh = [e for e in events if not (e.seq and (e.service, e.seq) in self._seqs)]
        if not fresh:
            return
        merged = sorted(self._events + fresh, key=lambda e: (e.wall, e.seq), reverse=True)[: self.cap]
        self.beginResetModel()
        self._events = merged
        self._described = [describe_event(e) for e in merged]
        self._seqs = {(e.service, e.seq) for e in merged if e.seq}
        self.endResetModel()

    def _trim(self) -> None:
        extra = len(self._events) - self.cap
        if extra <= 0:
            return
        first = self.cap
        self.beginRemoveRows(QModelIndex(), first, len(self._events) - 1)
        for e in self._events[first:]:
            self._seqs.discard((e.service, e.seq))
        del self._events[first:]
        del self._described[first:]
        self.endRemoveRows()

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._events)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole \
                and 0 <= section < len(HEADERS):
            return HEADERS[section]
        return None

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._events):
            return None
        event = self._events[index.row()]
        col = TimelineColumn(index.column())
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole,
                    Qt.ItemDataRole.AccessibleTextRole):
            what, why = self._described[index.row()]
            if col == TimelineColumn.TIME:
                return format_time(event.wall) if role == Qt.ItemDataRole.DisplayRole else iso_utc(event.wall)
            if col == TimelineColumn.DEVICE:
                return self.names.get(event.service, event.service) if event.service else "(engine)"
            if col == TimelineColumn.KIND:
                return event.KIND
            if col == TimelineColumn.WHAT:
                return what
            return why
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == TimelineColumn.WHAT:
                r = event_role(event)
                return QColor(palette.colour(self.theme, r)) if r != "normal" else None
            if col in (TimelineColumn.TIME, TimelineColumn.KIND, TimelineColumn.WHY):
                return QColor(self.theme.muted)
            return None
        if role == EVENT_ROLE:
            return event
        return None


class TimelineFilterProxy(QSortFilterProxyModel):
    """Filters the timeline by device (None = all), kind ("" = all) and free text."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._service: str | None = None
        self._kind = ""
        self._needle = ""

    def _refilter(self, apply: Callable[[], None]) -> None:
        self.beginFilterChange()
        apply()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_service(self, service_id: str | None) -> None:
        if service_id != self._service:
            self._refilter(lambda: setattr(self, "_service", service_id))

    def set_kind(self, kind: str) -> None:
        if kind != self._kind:
            self._refilter(lambda: setattr(self, "_kind", kind))

    def set_text(self, text: str) -> None:
        needle = text.strip().casefold()
        if needle != self._needle:
            self._refilter(lambda: setattr(self, "_needle", needle))

    def visible_events(self) -> list[Event]:
        """The events currently shown, top to bottom (what Export writes)."""
        return [self.index(r, 0).data(EVENT_ROLE) for r in range(self.rowCount())]

    def filterAcceptsRow(self, source_row: int, source_parent: ModelIndex) -> bool:
        model = self.sourceModel()
        if not isinstance(model, TimelineModel):
            return True
        event = model.event_at(source_row)
        if self._service is not None and event.service != self._service:
            return False
        if self._kind and event.KIND != self._kind:
            return False
        if self._needle:
            what, why = describe_event(event)
            hay = " ".join((model.names.get(event.service, ""), event.service, event.KIND, what, why))
            return self._needle in hay.casefold()
        return True


# ---------------------------------------------------------------- panel

class TimelineView(QWidget):
    """The timeline panel: filters, the event table and CSV export.

    Attributes:
        model: the TimelineModel.
        proxy: the TimelineFilterProxy in front of it.
        table: the QTableView (objectName "timeline").
        selected_only: checkbox "Selected device only".

    Signals:
        exported(str, int): path and row count after a successful export.
    """

    exported = Signal(str, int)

    def __init__(self, parent: QWidget | None = None, theme: palette.Theme = palette.LIGHT,
                 cap: int = DEFAULT_CAP) -> None:
        super().__init__(parent)
        self.setObjectName("timeline_panel")
        self.model = TimelineModel(self, cap=cap, theme=theme)
        self.proxy = TimelineFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self._selected_service: str | None = None

        self.selected_only = QCheckBox("Selected device only", self)
        self.selected_only.setObjectName("timeline_selected_only")
        self.selected_only.toggled.connect(self._on_selected_only_toggled)
        self.kind_box = QComboBox(self)
        self.kind_box.setObjectName("timeline_kind")
        self.kind_box.addItem("All kinds", "")
        for kind in EVENT_TYPES:
            self.kind_box.addItem(kind, kind)
        self.kind_box.currentIndexChanged.connect(self._on_kind_box_current_index_changed)
        self.text_box = QLineEdit(self)
        self.text_box.setObjectName("timeline_filter")
        self.text_box.setPlaceholderText("Filter events…")
        self.text_box.setClearButtonEnabled(True)
        self.text_box.textChanged.connect(self.proxy.set_text)
        self.export_button = QPushButton("Export CSV…", self)
        self.export_button.setObjectName("timeline_export")
        self.export_button.clicked.connect(self._on_export_button_clicked)

        self.table = QTableView(self)
        self.table.setObjectName("timeline")
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(False)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for col, width in ((TimelineColumn.TIME, 80), (TimelineColumn.DEVICE, 150), (TimelineColumn.KIND, 80),
                           (TimelineColumn.WHAT, 380)):
            self.table.setColumnWidth(col, width)

        title = QLabel("Timeline", self)
        title.setProperty("heading", True)
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(title)
        bar.addSpacing(12)
        bar.addWidget(self.selected_only)
        bar.addWidget(self.kind_box)
        bar.addWidget(self.text_box, 1)
        bar.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)

    def set_theme(self, theme: palette.Theme) -> None:
        self.model.set_theme(theme)

    def set_selected_service(self, service_id: str | None) -> None:
        """The device selected in the service table; filters only while "Selected device only" is on."""
        self._selected_service = service_id
        if self.selected_only.isChecked():
            self.proxy.set_service(service_id)

    def _on_selected_only_toggled(self, on: bool) -> None:
        self.proxy.set_service(self._selected_service if on else None)

    def _on_kind_box_current_index_changed(self, _index: int) -> None:
        self.proxy.set_kind(str(self.kind_box.currentData() or ""))

    def export_to(self, path: str) -> int:
        """Export the visible rows to `path`; returns the row count."""
        count = export_csv(self.proxy.visible_events(), path, self.model.names)
        self.exported.emit(path, count)
        return count

    def _on_export_button_clicked(self) -> None:
        self.choose_file_and_export()

    def choose_file_and_export(self) -> None:
        """Ask where to save, then export the visible rows there (File → Export timeline…, the button)."""
        path, _ = QFileDialog.getSaveFileName(self, "Export timeline", "faultwatch-timeline.csv",
                                              "CSV files (*.csv)")
        if not path:
            return
        try:
            self.export_to(path)
        except OSError as exc:
            log.error("export to %s failed: %s", path, exc)
            self.exported.emit(f"export failed: {exc}", -1)
