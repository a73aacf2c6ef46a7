"""The service table as a widget: the model, the filter/sort proxy and the delegates behind one view,
selection by service id, re-sorting at a bounded rate as values change, and the check-type filter
that offers only the types in use.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable, Mapping, Sequence

from PySide6.QtCore import QItemSelectionModel, Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QComboBox, QHeaderView, QWidget

from core.snapshot import ServiceSnapshot
from gui import palette, presentation
from gui.delegates import IndicatorDelegate, RowDelegate, SparklineDelegate, ValueDelegate
from gui.fleet_table import FleetTableView
from gui.service_model import SERVICE_ID_ROLE, Column, ServiceFilterProxy, ServiceTableModel, check_types

ROW_HEIGHT = 24
RESORT_INTERVAL_S = 2.0  # changed values re-sort/re-filter the table at most this often
COLUMN_WIDTHS = {Column.STATUS_LIGHT: 26, Column.NAME: 150, Column.GROUP: 70, Column.CHECK: 64,
                 Column.STATUS: 122, Column.BREAKER: 128, Column.VALUE: 96, Column.LAST_MS: 70,
                 Column.P50_MS: 64, Column.P95_MS: 64, Column.TREND: 84, Column.FAILURES: 44,
                 Column.CHECKED: 76, Column.RECOVERY: 150, Column.ENDPOINT: 76}


class ServiceTable(FleetTableView):
    """One row per service (objectName "services_table"), sorted by name and grouped by rack at first.

    Attributes:
        service_model: the ServiceTableModel (plain row values).
        filter_proxy: the ServiceFilterProxy the view shows (filter text, check type, grouping).
        row_delegate / indicator_delegate / sparkline_delegate / value_delegate: the painters.
        now: wall-clock callable (the bounded re-sort rate).
    """

    def __init__(self, parent: QWidget | None = None, *, theme: palette.Theme = palette.LIGHT,
                 now: Callable[[], float] = time.time) -> None:
        super().__init__(parent)
        self.setObjectName("services_table")
        self.setAccessibleName("Services")
        self.now = now
        self.service_model = ServiceTableModel(self, now=now, theme=theme)
        self.filter_proxy = ServiceFilterProxy(self)
        self.filter_proxy.setSourceModel(self.service_model)
        self._resort_due = False
        self._last_resort = 0.0
        self.setModel(self.filter_proxy)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setShowGrid(False)
        self.setWordWrap(False)
        self.setAlternatingRowColors(False)
        self.setSortingEnabled(True)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        vh = self.verticalHeader()
        vh.setVisible(False)
        vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)  # uniform rows: cheap at 1,000 rows
        vh.setDefaultSectionSize(ROW_HEIGHT)
        hh = self.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setStretchLastSection(True)
        hh.setHighlightSections(False)
        for col, width in COLUMN_WIDTHS.items():
            self.setColumnWidth(col, width)
        self.row_delegate = RowDelegate(self)
        self.setItemDelegate(self.row_delegate)
        self.indicator_delegate = IndicatorDelegate(theme, self)
        self.sparkline_delegate = SparklineDelegate(theme, self)
        self.value_delegate = ValueDelegate(theme, self)
        self.setItemDelegateForColumn(Column.STATUS_LIGHT, self.indicator_delegate)
        self.setItemDelegateForColumn(Column.BREAKER, self.indicator_delegate)
        self.setItemDelegateForColumn(Column.TREND, self.sparkline_delegate)
        self.setItemDelegateForColumn(Column.VALUE, self.value_delegate)
        self.sortByColumn(Column.NAME, Qt.SortOrder.AscendingOrder)

    # ---- rows
    def update_snapshots(self, changed: Mapping[str, ServiceSnapshot]) -> bool:
        """Show new snapshots; returns whether a service is new or changed its check type."""
        model = self.service_model
        rows_before = model.rowCount()
        if not self._resort_due:
            # Most updates (latencies, ages) cannot move a row sorted by name: re-sort only for those
            # that can, since a re-sort of 1,000 rows is the most expensive thing the table does.
            for sid, snap in changed.items():
                old = model.snapshot(sid)
                if old is not None and self.filter_proxy.affects_order(old, snap):
                    self._resort_due = True
                    break
        types_changed = any((old := model.snapshot(sid)) is None or old.check_type != snap.check_type
                            for sid, snap in changed.items())
        model.update_snapshots(changed)
        if model.rowCount() != rows_before:
            self.filter_proxy.resort()  # new services go to their sorted place at once
        return types_changed

    def remove_services(self, removed: Sequence[str]) -> None:
        self.service_model.remove_services(removed)

    def refresh(self) -> None:
        """The clock moved (about once a second): ages, and a re-sort if values moved rows, at most
        every RESORT_INTERVAL_S so that rows do not jump under the pointer."""
        now = self.now()
        if self._resort_due and now - self._last_resort >= RESORT_INTERVAL_S:
            self._resort_due = False
            self._last_resort = now
            self.filter_proxy.resort()
        self.service_model.refresh_times()

    def set_theme(self, theme: palette.Theme) -> None:
        self.service_model.set_theme(theme)
        for delegate in (self.indicator_delegate, self.sparkline_delegate, self.value_delegate):
            delegate.theme = theme
        self.viewport().update()

    def set_group_by_rack(self, on: bool) -> None:
        proxy = self.filter_proxy
        proxy.set_group_by_rack(on)
        proxy.sort(proxy.sortColumn(), proxy.sortOrder())

    # ---- selection
    def selected_ids(self) -> list[str]:
        """The selected services' ids in table order."""
        rows = sorted(self.selectionModel().selectedRows(), key=lambda idx: idx.row())
        return [str(idx.data(SERVICE_ID_ROLE)) for idx in rows]

    def selected_snapshots(self) -> list[ServiceSnapshot]:
        snaps = (self.service_model.snapshot(sid) for sid in self.selected_ids())
        return [s for s in snaps if s is not None]

    def select_services(self, service_ids: Sequence[str]) -> None:
        """Select rows by service id (the first becomes current); ids not shown are skipped."""
        sel = self.selectionModel()
        sel.clearSelection()
        first = True
        for sid in service_ids:
            row = self.service_model.row_of(sid)
            if row is None:
                continue
            proxy_index = self.filter_proxy.mapFromSource(self.service_model.index(row, 0))
            if not proxy_index.isValid():
                continue
            flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
            if first:
                sel.setCurrentIndex(proxy_index, flags)
                first = False
            else:
                sel.select(proxy_index, flags)


class CheckTypeFilter(QComboBox):
    """"All checks", then the check types in use as words (objectName "filter_check_type"; item data is
    the config's `type` key).

    Signals:
        check_type_changed(str): the type chosen ("" for all).
    """

    check_type_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("filter_check_type")
        self.setAccessibleName("Filter by check type")
        self.setToolTip("Show only devices checked this way")
        self.addItem("All checks", "")
        self.currentIndexChanged.connect(self._on_current_index_changed)

    def check_type(self) -> str:
        return str(self.currentData() or "")

    def update_choices(self, snaps: Iterable[ServiceSnapshot]) -> None:
        """Offer the check types in use (a reload may add or drop some); keep the current choice."""
        wanted = check_types(snaps)
        current = self.check_type()
        if current and current not in wanted:
            wanted.append(current)  # never pull the filter from under the user
        if [self.itemData(i) for i in range(1, self.count())] == wanted:
            return
        self.blockSignals(True)
        try:
            while self.count() > 1:
                self.removeItem(1)
            for t in wanted:
                self.addItem(presentation.check_word(t), t)
            self.setCurrentIndex(max(0, self.findData(current)))
        finally:
            self.blockSignals(False)

    def _on_current_index_changed(self, _index: int) -> None:
        self.check_type_changed.emit(self.check_type())
