"""View → Group by dependency: the action, its remembered setting, and the rules between sections.

The arrangement itself is gui/dependency_tree.py, applied by the table's proxy
(`ServiceFilterProxy.set_group_by_dependency`); this module switches it and keeps the delegates'
section rules (a line above each tree and above the services without dependencies) in step with
the rows the view shows after every sort, filter and reload.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, QSettings
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QTableView

from gui.actions import make_action
from gui.service_model import Column, ServiceFilterProxy, ServiceTableModel

SETTINGS_KEY = "view/group_by_dependency"
_CELL_PADDING = 14  # the delegate's text margins and a little air
_MAX_STATUS_WIDTH = 260
ACTION_NAME = "action_group_by_dependency"


class DependencyGrouping(QObject):
    """Owns `action_group_by_dependency` for a window with a service table.

    Attributes:
        action: the checkable QAction (in the View menu after "Group by rack").
        table / proxy / model: the window's service table, its filter proxy and source model.
    """

    def __init__(self, window: Any, settings: QSettings) -> None:
        super().__init__(window)
        self.setObjectName("dependency_grouping")
        self.table: QTableView = window.table
        self.proxy: ServiceFilterProxy = window.proxy
        self.model: ServiceTableModel = window.model
        self._settings = settings
        self.action = make_action(window, ACTION_NAME, "Group by dependency",
                                  "Show each device with the devices behind it beneath it; "
                                  "devices without dependencies in their own section", lambda: None, checkable=True)
        window.named_actions[ACTION_NAME] = self.action
        window.addAction(self.action)
        _insert_after(window.named_actions.get("action_group_by_rack"), self.action)
        for signal in (self.proxy.layoutChanged, self.proxy.rowsInserted, self.proxy.rowsRemoved,
                       self.proxy.modelReset):
            signal.connect(self._on_proxy_rows_changed)
        value = settings.value(SETTINGS_KEY, False)
        self.action.setChecked(value not in (False, "false", "0", 0, None))
        self.action.toggled.connect(self._on_action_toggled)
        if self.action.isChecked():
            self._apply(True)

    def _on_action_toggled(self, on: bool) -> None:
        self._settings.setValue(SETTINGS_KEY, on)
        self._apply(on)

    def _apply(self, on: bool) -> None:
        self.proxy.set_group_by_dependency(on)
        if self.proxy.sortColumn() < 0:
            self.proxy.sort(Column.NAME)
        self._on_proxy_rows_changed()

    def _on_proxy_rows_changed(self, *_args: object) -> None:
        rows: frozenset[int] = frozenset()
        if self.proxy.group_by_dependency:
            starts = []
            words: set[str] = set()
            proxy, model = self.proxy, self.model
            # Straight to the source rows (C++ mapping, no data() round trips): this runs after every
            # re-sort, every couple of seconds at 1,000 rows.
            for row in range(proxy.rowCount()):
                source = proxy.mapToSource(proxy.index(row, 0)).row()
                mark = model.tree_mark(model.snapshot_at(source).id)
                if mark is None:
                    continue
                if mark.section_start and row:  # nothing to separate above the first row
                    starts.append(row)
                if mark.depth:
                    words.add(model.status_word_at(source))
            rows = frozenset(starts)
            metrics = self.table.fontMetrics()
            widest = max((metrics.horizontalAdvance(w) for w in words), default=0)
            # "BLOCKED BY switch-3" is the point of the grouping: widen the Status column to show it
            # whole (never narrower than the user made it; bounded so one long id cannot take the table).
            needed = min(widest + _CELL_PADDING, _MAX_STATUS_WIDTH)
            if needed > self.table.columnWidth(Column.STATUS):
                self.table.setColumnWidth(Column.STATUS, needed)
        for column in range(self.model.columnCount()):
            delegate = self.table.itemDelegateForColumn(column) or self.table.itemDelegate()
            if hasattr(delegate, "section_rows") and delegate.section_rows != rows:
                delegate.section_rows = rows
        self.table.viewport().update()


def _insert_after(anchor: QAction | None, action: QAction) -> None:
    """Put `action` right after `anchor` in every menu that shows the anchor."""
    if anchor is None:
        return
    for owner in anchor.associatedObjects():
        if isinstance(owner, QMenu):
            actions = owner.actions()
            i = actions.index(anchor)
            if i + 1 < len(actions):
                owner.insertAction(actions[i + 1], action)
            else:
                owner.addAction(action)
