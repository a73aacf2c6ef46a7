"""The main window: service table, detail + latency chart, timeline, alert banner, status bar, and
wall mode. It wires the bridge's signals to the views and the actions to the engine; it holds no
fault-tolerance logic of its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Coroutine, Mapping, Sequence

from PySide6.QtCore import (QByteArray, QItemSelection, QItemSelectionModel, QModelIndex, QPoint, QRect, QSettings, Qt,
                            Signal)
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (QAbstractItemView, QApplication, QComboBox, QFileDialog, QFrame, QHeaderView, QLabel,
                               QLineEdit, QMainWindow, QMenu, QMessageBox, QScrollArea, QSplitter, QStackedWidget,
                               QTableView, QToolBar, QVBoxLayout, QWidget)

from core.events import AnomalyEvent, BreakerEvent, Event, RebootEvent, ServiceStatus
from core.snapshot import AlertView, CommandResult, EngineControl, EngineStats, ServiceSnapshot
from gui import palette, presentation, theme as qtheme
from gui.actions import SHORTCUTS, Confirm, ServiceActions, make_action
from gui.alert_banner import AlertBanner, unacknowledged
from gui.bridge import DEFAULT_INTERVAL_MS, EngineBridge
from gui.chart import LatencyChart
from gui.config_watch import ConfigNotice, ConfigWatcher
from gui.delegates import IndicatorDelegate, RowDelegate, SparklineDelegate, ValueDelegate
from gui.detail_panel import DetailPanel
from gui.device_actions import DeviceActions
from gui.fleet_table import FleetTableView
from gui.service_model import SERVICE_ID_ROLE, Column, ServiceFilterProxy, ServiceTableModel, check_types, status_counts
from gui.timeline import TimelineView
from gui.tray import TrayNotifier
from gui.value_chart import ValueChart
from gui.wall import WallView

log = logging.getLogger("gui.window")

ORIGIN = "gui"
MAX_RECENT = 8
HISTORY_LIMIT = 1000
ROW_HEIGHT = 24
# Qt restores column widths and order by position: a layout saved with another set of columns would
# give the Check column the old Status width and so on, so each column set keeps its own key.
_HEADER_KEY = f"table/header/{len(Column)}"
RESORT_INTERVAL_S = 2.0  # changed values re-sort/re-filter the table at most this often
_COLUMN_WIDTHS = {Column.STATUS_LIGHT: 26, Column.NAME: 150, Column.GROUP: 70, Column.CHECK: 64,
                  Column.STATUS: 122, Column.BREAKER: 128, Column.VALUE: 96, Column.LAST_MS: 70,
                  Column.P50_MS: 64, Column.P95_MS: 64, Column.TREND: 84, Column.FAILURES: 44,
                  Column.CHECKED: 76, Column.RECOVERY: 150, Column.ENDPOINT: 76}


def _settings_bytes(settings: QSettings, key: str) -> QByteArray | None:
    value = settings.value(key)
    if isinstance(value, QByteArray) and not value.isEmpty():
        return value
    if isinstance(value, (bytes, bytearray)) and value:
        return QByteArray(bytes(value))
    return None


class MainWindow(QMainWindow):
    """The Faultwatch console window.

    Attributes:
        engine: the EngineControl (reads go through `bridge`, commands through `service_actions`).
        bridge: the EngineBridge polling the engine.
        model / proxy / table: the service table (table objectName "services_table").
        detail: DetailPanel ("detail_panel"); chart: LatencyChart ("latency_chart").
        timeline_view: TimelineView (its table is "timeline").
        banner: AlertBanner ("alert_banner"); filter_box: QLineEdit ("filter_box").
        wall_view: WallView ("wall_view"), shown fullscreen in wall mode.
        service_actions: ServiceActions.
        named_actions: objectName → QAction (service and window actions; `actions()` is QWidget's).
        settings: the QSettings used for geometry, splitters, columns, theme, recent configs.
        theme: the current palette.Theme.
        tasks: the window's own async tasks (history loads, reloads); cancelled on close.

    Signals:
        closed(): the window was closed (the app's quit path listens to it).
    """

    closed = Signal()

    def __init__(self, engine: EngineControl, settings: QSettings, *, confirm: Confirm | None = None,
                 theme_name: str | None = None, now: Callable[[], float] = time.time,
                 bridge_interval_ms: int = DEFAULT_INTERVAL_MS, sound: bool | None = None,
                 tray: bool = True, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("main_window")
        self.setWindowTitle("Faultwatch")
        self.engine = engine
        self.settings = settings
        self.now = now
        self.tasks: set[asyncio.Future[Any]] = set()
        self.theme = qtheme.theme_named(theme_name or str(settings.value("view/theme", qtheme.DEFAULT_THEME)))
        self.sound = _config_sound(engine) if sound is None else sound
        self._current_id: str | None = None
        self._last_point_wall: float | None = None
        self._last_second = 0.0
        self._last_resort = 0.0
        self._resort_due = False
        # Status-bar counts, updated from the changed services only (recounting 5,000 every poll
        # was half the poll); status_counts() is the from-scratch definition it is tested against.
        self._tally = presentation.Tally(lambda s: presentation.status_keys(s, *self.model.indicators(s)),
                                         presentation.STATUS_KEYS)
        self._counts: dict[str, int] = status_counts([])
        self._stats: EngineStats | None = None
        self._notified_alerts: set[str] = set()
        self._wall_mode = False
        self._was_maximized = False
        self._normal_geometry: QRect | None = None

        self.bridge = EngineBridge(engine, bridge_interval_ms, self)

        # ---- service table
        self.model = ServiceTableModel(self, now=now, theme=self.theme)
        self.proxy = ServiceFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.table = FleetTableView(self)
        self.table.setObjectName("services_table")
        self.table.setAccessibleName("Services")
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.setAlternatingRowColors(False)
        self.table.setSortingEnabled(True)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        vh = self.table.verticalHeader()
        vh.setVisible(False)
        vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)  # uniform rows: cheap at 1,000 rows
        vh.setDefaultSectionSize(ROW_HEIGHT)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setStretchLastSection(True)
        hh.setHighlightSections(False)
        for col, width in _COLUMN_WIDTHS.items():
            self.table.setColumnWidth(col, width)
        self.row_delegate = RowDelegate(self.table)
        self.table.setItemDelegate(self.row_delegate)
        self.indicator_delegate = IndicatorDelegate(self.theme, self.table)
        self.sparkline_delegate = SparklineDelegate(self.theme, self.table)
        self.table.setItemDelegateForColumn(Column.STATUS_LIGHT, self.indicator_delegate)
        self.table.setItemDelegateForColumn(Column.BREAKER, self.indicator_delegate)
        self.table.setItemDelegateForColumn(Column.TREND, self.sparkline_delegate)
        self.value_delegate = ValueDelegate(self.theme, self.table)
        self.table.setItemDelegateForColumn(Column.VALUE, self.value_delegate)
        self.table.sortByColumn(Column.NAME, Qt.SortOrder.AscendingOrder)

        self.filter_box = QLineEdit(self)
        self.filter_box.setObjectName("filter_box")
        self.filter_box.setAccessibleName("Filter services")
        self.filter_box.setPlaceholderText(
            f"Filter name, group or state… ({QKeySequence(SHORTCUTS['action_find']).toString()})")
        self.filter_box.setClearButtonEnabled(True)
        self.filter_box.setMaximumWidth(320)
        self.filter_box.textChanged.connect(self._on_filter_box_text_changed)
        self.check_type_filter = QComboBox(self)
        self.check_type_filter.setObjectName("filter_check_type")
        self.check_type_filter.setAccessibleName("Filter by check type")
        self.check_type_filter.setToolTip("Show only devices checked this way")
        self.check_type_filter.addItem("All checks", "")
        self.check_type_filter.currentIndexChanged.connect(self._on_check_type_filter_current_index_changed)

        # ---- other views
        self.banner = AlertBanner(self, now=now)
        self.config_notice = ConfigNotice(self)
        self.config_watch = ConfigWatcher(self)
        self.detail = DetailPanel(self, theme=self.theme, now=now)
        self.detail.children_of = self._children_of
        self.chart = LatencyChart(self, theme=self.theme, clock=now)
        self.chart.setObjectName("latency_chart")
        self.value_chart = ValueChart(self, theme=self.theme, clock=now)  # shown for checks that read numbers
        self.timeline_view = TimelineView(self, theme=self.theme)
        self.wall_view = WallView(self, theme=self.theme)
        self.wall_view.setObjectName("wall_view")

        # ---- layout
        self.right_splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.right_splitter.setObjectName("right_splitter")
        # The detail panel scrolls, so a short window still leaves the chart a readable height.
        self.detail_scroll = QScrollArea(self)
        self.detail_scroll.setObjectName("detail_scroll")
        self.detail_scroll.setWidget(self.detail)
        self.detail_scroll.setWidgetResizable(True)
        self.detail_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.detail_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.chart.setMinimumHeight(180)
        self.right_splitter.addWidget(self.detail_scroll)
        self.right_splitter.addWidget(self.chart)
        self.value_chart.setMinimumHeight(150)
        self.right_splitter.addWidget(self.value_chart)
        self.value_chart.hide()
        self.right_splitter.setChildrenCollapsible(False)
        self.right_splitter.setStretchFactor(0, 3)
        self.right_splitter.setStretchFactor(1, 2)
        self.main_splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.main_splitter.setObjectName("main_splitter")
        self.main_splitter.addWidget(self.table)
        self.main_splitter.addWidget(self.right_splitter)
        self.main_splitter.setStretchFactor(0, 3)
        self.main_splitter.setStretchFactor(1, 1)
        self.vertical_splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.vertical_splitter.setObjectName("vertical_splitter")
        self.vertical_splitter.addWidget(self.main_splitter)
        self.vertical_splitter.addWidget(self.timeline_view)
        self.vertical_splitter.setStretchFactor(0, 3)
        self.vertical_splitter.setStretchFactor(1, 1)
        # First-run proportions (restore_settings() replaces them): the table gets room for all its
        # columns, the timeline a useful handful of rows.
        self.main_splitter.setSizes([1090, 350])
        self.right_splitter.setSizes([390, 220, 180])
        self.vertical_splitter.setSizes([640, 200])
        console = QWidget(self)
        console.setObjectName("central")
        layout = QVBoxLayout(console)
        layout.setContentsMargins(6, 4, 6, 2)
        layout.setSpacing(4)
        layout.addWidget(self.banner)
        layout.addWidget(self.config_notice)
        layout.addWidget(self.vertical_splitter, 1)
        self.console = console
        self.stack = QStackedWidget(self)
        self.stack.setObjectName("central_stack")
        self.stack.addWidget(console)
        self.stack.addWidget(self.wall_view)
        self.setCentralWidget(self.stack)

        # ---- actions, menus, toolbar
        self.service_actions = ServiceActions(engine, self.selected_snapshots, lambda: self.bridge.snapshots,
                                              lambda: self.bridge.alerts, self, confirm=confirm, now=now)
        self.named_actions: dict[str, QAction] = dict(self.service_actions.actions)
        self.device_actions = DeviceActions(self, confirm=confirm)  # Device menu: add, edit, import…
        self.named_actions.update(self.device_actions.actions)
        self._build_window_actions()
        self._build_menus_and_toolbar()
        for action in self.named_actions.values():
            self.addAction(action)  # shortcuts keep working with menus/toolbar hidden (wall mode)
        self._escape = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        self._escape.setObjectName("shortcut_leave_wall")
        self._escape.setEnabled(False)
        self._escape.activated.connect(self._on_escape_activated)

        # ---- status bar
        self.summary_label = QLabel(self)
        self.summary_label.setObjectName("status_summary")
        self.progress_label = QLabel(self)
        self.progress_label.setObjectName("status_progress")
        self.statusBar().addPermanentWidget(self.progress_label)
        self.statusBar().addPermanentWidget(self.summary_label)

        # ---- tray (gui/tray.py: worst-state icon, counts tooltip, notices for new critical alerts)
        self.tray: TrayNotifier | None = None
        if tray:
            self.tray = TrayNotifier(self, theme=self.theme, now=now)
            self.tray.open_alert_requested.connect(self.open_alert)
            self.tray.show_window_requested.connect(self._raise_window)

        # ---- wiring
        self.bridge.snapshots_changed.connect(self._on_bridge_snapshots_changed)
        self.bridge.services_removed.connect(self._on_bridge_services_removed)
        self.bridge.events_arrived.connect(self._on_bridge_events_arrived)
        self.bridge.alerts_changed.connect(self._on_bridge_alerts_changed)
        self.bridge.stats_changed.connect(self._on_bridge_stats_changed)
        self.bridge.ticked.connect(self._on_bridge_ticked)
        sel = self.table.selectionModel()
        sel.selectionChanged.connect(self._on_table_selection_changed)
        sel.currentRowChanged.connect(self._on_table_current_row_changed)
        self.table.customContextMenuRequested.connect(self._on_table_custom_context_menu_requested)
        self.banner.acknowledge_requested.connect(self._on_banner_acknowledge_requested)
        self.banner.silence_requested.connect(self._on_banner_silence_requested)
        self.chart.range_changed.connect(self._on_chart_range_changed)
        self.value_chart.range_changed.connect(self._on_value_chart_range_changed)
        self.config_watch.changed.connect(self._on_config_watch_changed)
        self.timeline_view.exported.connect(self._on_timeline_view_exported)
        self.service_actions.message.connect(self._on_service_actions_message)
        self.service_actions.progress_changed.connect(self._on_service_actions_progress_changed)

        self.resize(1440, 900)
        self.restore_settings()
        self.set_theme(self.theme.name)
        self._update_summary()

    # ------------------------------------------------------------------ building
    def _build_window_actions(self) -> None:
        def make(name: str, text: str, tip: str, slot: Callable[[], object]) -> QAction:
            action = make_action(self, name, text, tip, slot)
            self.named_actions[name] = action
            return action

        make("action_open_config", "Open config…", "Load another configuration file", self._on_open_config)
        make("action_quit", "Quit", "Quit Faultwatch", self.close)
        make("action_wall_mode", "Wall mode", "Full-screen wall of tiles (Esc or F11 to leave)",
             self.toggle_wall_mode)
        make("action_find", "Find…", "Filter the service table", self._on_find)
        make("action_reports", "Reports…", "Availability, outages, detection and recovery over a period; "
             "export CSV, HTML or PDF", self._on_reports)
        make("action_export_timeline", "Export timeline…", "Save the visible timeline rows as CSV",
             self.timeline_view._on_export_button_clicked)
        group_by = make("action_group_by_rack", "Group by rack", "Keep rows grouped by group (rack)",
                        lambda: None)
        group_by.setCheckable(True)
        group_by.setChecked(True)
        group_by.toggled.connect(self._on_group_by_rack_toggled)
        self.theme_group = QActionGroup(self)
        self.theme_group.setExclusive(True)
        for name in palette.THEMES:
            action = QAction(f"{name.capitalize()} theme", self)
            action.setObjectName(f"action_theme_{name}")
            action.setCheckable(True)
            action.setData(name)
            self.theme_group.addAction(action)
            self.named_actions[action.objectName()] = action
        self.theme_group.triggered.connect(self._on_theme_group_triggered)

    def _build_menus_and_toolbar(self) -> None:
        a = self.named_actions
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.setObjectName("menu_file")
        self.file_menu = file_menu  # gui/engines.py adds "Connect to engine…" here
        file_menu.addAction(a["action_open_config"])
        self.recent_menu = file_menu.addMenu("Recent configs")
        self.recent_menu.setObjectName("menu_recent")
        file_menu.addAction(a["action_export_timeline"])
        file_menu.addAction(a["action_reports"])
        file_menu.addSeparator()
        file_menu.addAction(a["action_quit"])
        device_menu = bar.addMenu("&Device")
        self._add_service_actions(device_menu)
        alerts_menu = bar.addMenu("&Alerts")
        alerts_menu.addAction(a["action_acknowledge"])
        view_menu = bar.addMenu("&View")
        view_menu.addAction(a["action_wall_mode"])
        view_menu.addAction(a["action_find"])
        view_menu.addAction(a["action_group_by_rack"])
        view_menu.addSeparator()
        for action in self.theme_group.actions():
            view_menu.addAction(action)

        toolbar = QToolBar("Actions", self)
        toolbar.setObjectName("main_toolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        for name in ("action_force_open", "action_force_close", "action_reset_breaker", "action_restart",
                     "action_pause", "action_maintenance"):
            toolbar.addAction(a[name])
        toolbar.addSeparator()
        toolbar.addWidget(self.filter_box)
        toolbar.addWidget(self.check_type_filter)
        toolbar.addSeparator()
        toolbar.addAction(a["action_acknowledge"])
        spacer = QWidget(toolbar)
        spacer.setSizePolicy(spacer.sizePolicy().Policy.Expanding, spacer.sizePolicy().Policy.Preferred)
        toolbar.addWidget(spacer)
        toolbar.addAction(a["action_wall_mode"])
        self.addToolBar(toolbar)
        self.toolbar = toolbar

    def _add_service_actions(self, menu: QMenu) -> None:
        a = self.named_actions
        for name in ("action_force_open", "action_force_close", "action_reset_breaker"):
            menu.addAction(a[name])
        menu.addSeparator()
        menu.addAction(a["action_restart"])
        menu.addSeparator()
        for name in ("action_pause", "action_maintenance", "action_maintenance_group"):
            menu.addAction(a[name])
        menu.addSeparator()
        menu.addAction(a["action_acknowledge"])
        self.device_actions.add_to_menu(menu)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start polling the engine and load the recent history into the timeline."""
        self.bridge.start()
        self.spawn(self._load_history())
        self.config_watch.watch(_engine_config_path(self.engine))

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
        """Run a window-owned coroutine as a task (kept so shutdown can cancel it)."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._on_task_done)
        return task

    def _on_task_done(self, task: asyncio.Future[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("window task failed", exc_info=task.exception())

    async def wait_idle(self) -> None:
        """Wait for the window's and the actions' pending tasks (tests)."""
        while self.tasks or self.service_actions.tasks:
            await asyncio.gather(*list(self.tasks), *list(self.service_actions.tasks), return_exceptions=True)

    def shutdown(self) -> None:
        """Stop polling and cancel pending tasks; idempotent."""
        self.bridge.stop()
        self.config_watch.watch(None)
        for task in list(self.tasks):
            task.cancel()
        self.service_actions.cancel_all()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._wall_mode:
            self.toggle_wall_mode()
        self.save_settings()
        self.shutdown()
        if self.tray is not None:
            self.tray.hide()
        super().closeEvent(event)
        self.closed.emit()

    async def _load_history(self) -> None:
        try:
            events = await self.engine.journal_events(limit=HISTORY_LIMIT)
        except Exception:
            log.exception("loading the journal history failed")
            self.statusBar().showMessage("Could not load the event history", 8000)
            return
        self.timeline_view.model.load_history(list(events))

    # ------------------------------------------------------------------ selection
    def selected_ids(self) -> list[str]:
        rows = sorted(self.table.selectionModel().selectedRows(), key=lambda idx: idx.row())  # table order
        return [str(idx.data(SERVICE_ID_ROLE)) for idx in rows]

    def selected_snapshots(self) -> list[ServiceSnapshot]:
        out = []
        for sid in self.selected_ids():
            snap = self.model.snapshot(sid)
            if snap is not None:
                out.append(snap)
        return out

    def select_services(self, service_ids: Sequence[str]) -> None:
        """Select rows by service id (the first becomes current)."""
        sel = self.table.selectionModel()
        sel.clearSelection()
        first = True
        for sid in service_ids:
            row = self.model.row_of(sid)
            if row is None:
                continue
            proxy_index = self.proxy.mapFromSource(self.model.index(row, 0))
            if not proxy_index.isValid():
                continue
            flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
            if first:
                sel.setCurrentIndex(proxy_index, flags)
                first = False
            else:
                sel.select(proxy_index, flags)

    def _on_table_selection_changed(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        self.service_actions.refresh_state()

    def _on_table_current_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        sid = current.data(SERVICE_ID_ROLE) if current.isValid() else None
        self._show_service(str(sid) if sid is not None else None)

    def _show_service(self, service_id: str | None) -> None:
        if service_id == self._current_id:
            return
        self._current_id = service_id
        snap = self.model.snapshot(service_id) if service_id else None
        self.detail.set_snapshot(snap)
        self.timeline_view.set_selected_service(service_id)
        self.chart.set_service(snap)
        self._last_point_wall = snap.last_check_wall if snap else None
        self.value_chart.set_service(snap)
        self.value_chart.setVisible(snap is not None and presentation.has_numeric_values(snap))
        if snap is not None:
            self.spawn(self._load_latency_history(snap.id))
            self.spawn(self._load_value_history(snap.id))

    async def _load_value_history(self, service_id: str) -> None:
        range_s = self.value_chart.range_seconds()
        try:
            points = await self.engine.value_history(service_id, self.now() - range_s, rollup=range_s > 3600)
        except Exception:
            log.exception("loading value history for %s failed", service_id)
            return
        if service_id == self._current_id:
            self.value_chart.set_history(list(points))
            if points:
                self.value_chart.show()

    def _on_value_chart_range_changed(self, seconds: int) -> None:
        # One range for both charts: they are read against each other (a slow answer, an odd value).
        self.chart.set_range_seconds(seconds)
        self._on_chart_range_changed(seconds)

    def _on_check_type_filter_current_index_changed(self, _index: int) -> None:
        self.proxy.set_check_type(str(self.check_type_filter.currentData() or ""))

    def _update_check_type_choices(self) -> None:
        """Offer the check types in use (a reload may add or drop some); keep the current choice."""
        combo = self.check_type_filter
        wanted = check_types(self.bridge.snapshots.values())
        current = str(combo.currentData() or "")
        if current and current not in wanted:
            wanted.append(current)  # never pull the filter from under the user
        if [combo.itemData(i) for i in range(1, combo.count())] == wanted:
            return
        combo.blockSignals(True)
        try:
            while combo.count() > 1:
                combo.removeItem(1)
            for t in wanted:
                combo.addItem(presentation.check_word(t), t)
            combo.setCurrentIndex(max(0, combo.findData(current)))
        finally:
            combo.blockSignals(False)

    async def _load_latency_history(self, service_id: str) -> None:
        range_s = self.chart.range_seconds()
        try:
            points = await self.engine.latency_history(service_id, self.now() - range_s, rollup=range_s > 3600)
        except Exception:
            log.exception("loading latency history for %s failed", service_id)
            return
        if service_id == self._current_id:
            self.chart.set_history(list(points))

    def _on_chart_range_changed(self, seconds: int) -> None:
        if self.value_chart.range_seconds() != seconds:
            self.value_chart.set_range_seconds(seconds)
        if self._current_id:
            self.spawn(self._load_latency_history(self._current_id))
            self.spawn(self._load_value_history(self._current_id))

    # ------------------------------------------------------------------ bridge → views
    def _on_bridge_snapshots_changed(self, changed: Mapping[str, ServiceSnapshot]) -> None:
        rows_before = self.model.rowCount()
        if not self._resort_due:
            # Most updates (latencies, ages) cannot move a row sorted by name: re-sort only for those
            # that can, since a re-sort of 1,000 rows is the most expensive thing the table does.
            for sid, snap in changed.items():
                old = self.model.snapshot(sid)
                if old is not None and self.proxy.affects_order(old, snap):
                    self._resort_due = True
                    break
        types_changed = any((old := self.model.snapshot(sid)) is None or old.check_type != snap.check_type
                            for sid, snap in changed.items())
        self.model.update_snapshots(changed)
        if self.model.rowCount() != rows_before:
            self.proxy.resort()  # new services go to their sorted place at once
        names = self.timeline_view.model.names
        for sid, snap in changed.items():
            names[sid] = snap.name
        self.banner.names = names
        if self._tally.update(changed):
            self._counts = self._tally.counts()
        current = changed.get(self._current_id) if self._current_id else None
        if current is not None:
            self.detail.set_snapshot(current)
            self.value_chart.update_snapshot(current)
            if current.last_check_wall is not None and current.last_check_wall != self._last_point_wall:
                self._last_point_wall = current.last_check_wall
                ms = None if current.status is ServiceStatus.UNHEALTHY else current.last_latency_ms
                self.chart.add_point(current.last_check_wall, ms)
                number = presentation.numeric_value(current)
                if number is not None:
                    self.value_chart.add_point(current.last_check_wall, number)
                    self.value_chart.show()
        if types_changed:
            self._update_check_type_choices()
        if any(s.id in changed for s in self.selected_snapshots()):
            self.service_actions.refresh_state()
        if self._wall_mode:
            self.wall_view.update_snapshots(self.bridge.snapshots)
        if self.tray is not None:
            self.tray.update_snapshots(self.bridge.snapshots)
        self._update_summary()

    def _on_bridge_services_removed(self, removed: Sequence[str]) -> None:
        self.model.remove_services(removed)
        self._update_check_type_choices()
        if self._tally.update({}, removed):
            self._counts = self._tally.counts()
        if self._current_id in removed:
            self._show_service(None)
        if self._wall_mode:
            self.wall_view.update_snapshots(self.bridge.snapshots)
        self._update_summary()

    def _on_bridge_events_arrived(self, events: Sequence[Event]) -> None:
        self.timeline_view.model.add_events(events)
        if not self._current_id:
            return
        for e in events:
            if e.service != self._current_id:
                continue
            if isinstance(e, BreakerEvent):
                self.chart.add_marker(e.wall, "breaker", e.to_state.value.replace("_", "-").upper()
                                      if hasattr(e.to_state, "value") else str(e.to_state))
            elif isinstance(e, AnomalyEvent):
                self.chart.add_marker(e.wall, "anomaly", f"{e.latency_ms:.0f} ms (baseline {e.baseline_ms:.0f})")
            elif isinstance(e, RebootEvent):
                self.value_chart.add_reboot(e.wall)

    def _on_bridge_alerts_changed(self, alerts: list[AlertView]) -> None:
        self.banner.set_alerts(alerts)
        if self._wall_mode:
            self.wall_view.set_alert_age(self.banner.oldest_age())
        if self.tray is not None:
            self.tray.update_alerts(alerts)
        fresh = [a for a in unacknowledged(alerts, self.now())
                 if a.severity == "critical" and a.active and a.id not in self._notified_alerts]
        self._notified_alerts.update(a.id for a in fresh)
        if fresh and self.sound:
            QApplication.beep()

    def open_alert(self, alert_id: str, service: str) -> None:
        """Bring the window up on an alert: out of wall mode, raised, its device (or its rack) selected."""
        if self._wall_mode:
            self.toggle_wall_mode()
        self._raise_window()
        alert = next((a for a in self.bridge.alerts if a.id == alert_id), None)
        ids = [service] if service else [s.id for s in self.bridge.snapshots.values()
                                         if alert is not None and s.group == alert.group]
        if ids and self.filter_box.text():
            self.filter_box.clear()  # a filtered-out row cannot be shown
        self.select_services(ids)
        self.table.setFocus()

    def _children_of(self, service_id: str) -> list[str]:
        return sorted(s.name for s in self.bridge.snapshots.values()
                      if service_id in getattr(s, "depends_on", ()))

    def _raise_window(self) -> None:
        if self.isMinimized():
            self.showNormal()
        self.show()
        self.raise_()
        self.activateWindow()

    def _on_bridge_stats_changed(self, stats: EngineStats) -> None:
        self._stats = stats
        self._update_summary()

    def _on_bridge_ticked(self) -> None:
        now = self.now()
        if now - self._last_second < 1.0:
            return
        self._last_second = now
        if self._resort_due and now - self._last_resort >= RESORT_INTERVAL_S:
            self._resort_due = False
            self._last_resort = now
            self.proxy.resort()
        self.model.refresh_times()
        self.detail.refresh()
        self.banner.refresh_age()
        if self._wall_mode:
            self.wall_view.set_alert_age(self.banner.oldest_age())

    def summary_text(self) -> str:
        c = self._counts
        # One category per service (gui/presentation.py, as on the wall); the suppressed ones are
        # named by why: forced, maintenance, paused.
        parts = [f"{c['healthy']} healthy", f"{c['degraded']} degraded", f"{c['unhealthy']} unhealthy",
                 f"{c['forced']} forced"]
        for key in ("maintenance", "paused", "recovering", "unknown"):
            if c[key]:
                parts.append(f"{c[key]} {key}")
        if self._stats is not None:
            parts.append(f"{self._stats.checks_per_second:.0f} checks/s")
            parts.append(f"loop lag {self._stats.loop_lag_ms:.0f} ms")
        return " · ".join(parts)

    def _update_summary(self) -> None:
        text = self.summary_text()
        if self.summary_label.text() != text:
            self.summary_label.setText(text)

    # ------------------------------------------------------------------ user input
    def _on_filter_box_text_changed(self, text: str) -> None:
        self.proxy.set_filter_text(text)

    def _on_reports(self) -> None:
        from gui.reports_view import show_reports  # Qt SVG widgets load only when reports are wanted
        self.reports_view = show_reports(self, self.engine, getattr(self, "reports_view", None))

    def _on_find(self) -> None:
        if self._wall_mode:
            return
        self.filter_box.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.filter_box.selectAll()

    def _on_group_by_rack_toggled(self, on: bool) -> None:
        self.proxy.set_group_by_rack(on)
        self.proxy.sort(self.proxy.sortColumn(), self.proxy.sortOrder())

    def _on_table_custom_context_menu_requested(self, pos: QPoint) -> None:
        menu = QMenu(self.table)
        menu.setObjectName("services_context_menu")
        self._add_service_actions(menu)
        menu.popup(self.table.viewport().mapToGlobal(pos))

    def _on_banner_acknowledge_requested(self, alert_ids: list[str]) -> None:
        self.service_actions.acknowledge(alert_ids)

    def _on_banner_silence_requested(self, alert_ids: list[str], seconds: float) -> None:
        self.service_actions.silence(alert_ids, seconds)

    def _on_service_actions_message(self, text: str, timeout_ms: int) -> None:
        self.statusBar().showMessage(text, timeout_ms)

    def _on_service_actions_progress_changed(self, text: str) -> None:
        self.progress_label.setText(text)

    def _on_timeline_view_exported(self, path: str, count: int) -> None:
        if count < 0:
            self.statusBar().showMessage(path, 10_000)
        else:
            self.statusBar().showMessage(f"Exported {count} events to {path}", 5000)

    # ------------------------------------------------------------------ config files
    def _on_open_config(self) -> None:
        start = self.recent_configs()[0] if self.recent_configs() else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open configuration", start, "Faultwatch config (*.toml)")
        if path:
            self.open_config(path)

    def open_config(self, path: str) -> asyncio.Future[Any]:
        """Ask the engine to load `path`; a refused config shows its one-line error."""
        self._remember_recent(path)
        self.progress_label.setText(f"loading {path}…")
        return self.spawn(self._reload(path))

    def _on_config_watch_changed(self, path: str) -> None:
        log.info("%s changed on disk: reloading", path)
        self.spawn(self._reload(path, automatic=True))

    async def _reload(self, path: str, automatic: bool = False) -> CommandResult:
        """Reload `path`. A refusal keeps the running config and shows the one-line error: in a
        window-modal box when the user asked (File → Open), in the non-modal notice when the file
        changed on disk (nobody may be at the screen to close a box)."""
        try:
            result = await self.engine.reload(path, ORIGIN)
        except Exception as exc:
            log.exception("reload of %s failed", path)
            result = CommandResult(False, str(exc))
        finally:
            self.progress_label.setText("")
        if result.ok:
            self.config_notice.hide()
            self.statusBar().showMessage(f"config reloaded: {result.message}", 5000)
            self.config_watch.watch(path)  # File → Open switches the watch to the new file
        else:
            self.statusBar().showMessage(f"✖ config not reloaded: {result.message}", 15_000)
            if automatic:
                self.config_notice.show_error(result.message)
            else:
                box = QMessageBox(QMessageBox.Icon.Warning, "Configuration refused", result.message,
                                  QMessageBox.StandardButton.Ok, self)
                box.setObjectName("config_error_dialog")
                box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
                box.open()  # window-modal and non-blocking
        return result

    def recent_configs(self) -> list[str]:
        value = self.settings.value("files/recent", [])
        if isinstance(value, str):
            return [value] if value else []
        return [str(v) for v in value] if isinstance(value, (list, tuple)) else []

    def _remember_recent(self, path: str) -> None:
        recent = [path] + [p for p in self.recent_configs() if p != path]
        self.settings.setValue("files/recent", recent[:MAX_RECENT])
        self._rebuild_recent_menu()

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.recent_configs()
        for path in recent:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _checked=False, p=path: self.open_config(p))
        self.recent_menu.setEnabled(bool(recent))

    # ------------------------------------------------------------------ wall mode
    def is_wall_mode(self) -> bool:
        return self._wall_mode

    def toggle_wall_mode(self) -> None:
        """Swap the console for the full-screen wall (and back)."""
        if not self._wall_mode:
            self._wall_mode = True
            self._was_maximized = self.isMaximized()
            self.wall_view.update_snapshots(self.bridge.snapshots)
            self.wall_view.set_alert_age(self.banner.oldest_age())
            self.stack.setCurrentWidget(self.wall_view)
            self.menuBar().hide()
            self.toolbar.hide()
            self.statusBar().hide()
            self._escape.setEnabled(True)
            self._normal_geometry = self.geometry()
            # Without a window manager (a kiosk X session, Xvfb) showFullScreen() only sets a state
            # nobody acts on and the window keeps its size: cover the screen ourselves first (after
            # showFullScreen() a setGeometry() would drop the full-screen state again).
            screen = self.screen() or QApplication.primaryScreen()
            if screen is not None:
                self.setGeometry(screen.geometry())
            self.showFullScreen()
        else:
            self._wall_mode = False
            self.stack.setCurrentWidget(self.console)
            self.menuBar().show()
            self.toolbar.show()
            self.statusBar().show()
            self._escape.setEnabled(False)
            if self._was_maximized:
                self.showMaximized()
            else:
                self.showNormal()
                if self._normal_geometry is not None:
                    self.setGeometry(self._normal_geometry)
            self.table.setFocus()
        self.named_actions["action_wall_mode"].setText("Leave wall mode" if self._wall_mode else "Wall mode")

    def _on_escape_activated(self) -> None:
        if self._wall_mode:
            self.toggle_wall_mode()

    # ------------------------------------------------------------------ theme + settings
    def set_theme(self, name: str) -> None:
        self.theme = qtheme.theme_named(name)
        app = QApplication.instance()
        if isinstance(app, QApplication):
            qtheme.apply_theme(app, self.theme)
        self.model.set_theme(self.theme)
        self.indicator_delegate.theme = self.theme
        self.sparkline_delegate.theme = self.theme
        self.detail.set_theme(self.theme)
        self.timeline_view.set_theme(self.theme)
        self.chart.set_theme(self.theme)
        self.value_chart.set_theme(self.theme)
        self.value_delegate.theme = self.theme
        self.wall_view.set_theme(self.theme)
        if self.tray is not None:
            self.tray.set_theme(self.theme)
        for action in self.theme_group.actions():
            action.setChecked(action.data() == self.theme.name)
        self.table.viewport().update()

    def _on_theme_group_triggered(self, action: QAction) -> None:
        self.set_theme(str(action.data()))

    def save_settings(self) -> None:
        s = self.settings
        if not self._wall_mode:
            s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("window/split_main", self.main_splitter.saveState())
        s.setValue("window/split_right", self.right_splitter.saveState())
        s.setValue("window/split_vertical", self.vertical_splitter.saveState())
        s.setValue(_HEADER_KEY, self.table.horizontalHeader().saveState())
        s.setValue("view/theme", self.theme.name)
        s.setValue("view/group_by_rack", self.named_actions["action_group_by_rack"].isChecked())
        s.sync()

    def restore_settings(self) -> None:
        s = self.settings
        if (geometry := _settings_bytes(s, "window/geometry")) is not None:
            self.restoreGeometry(geometry)
        if (state := _settings_bytes(s, "window/state")) is not None:
            self.restoreState(state)
        for key, splitter in (("window/split_main", self.main_splitter),
                              ("window/split_right", self.right_splitter),
                              ("window/split_vertical", self.vertical_splitter)):
            if (data := _settings_bytes(s, key)) is not None:
                splitter.restoreState(data)
        if (header := _settings_bytes(s, _HEADER_KEY)) is not None:
            self.table.horizontalHeader().restoreState(header)
        group_by = s.value("view/group_by_rack", True)
        self.named_actions["action_group_by_rack"].setChecked(group_by not in (False, "false", "0", 0))
        self._rebuild_recent_menu()


def _engine_config_path(engine: EngineControl) -> str | None:
    """The config file the engine runs (the demo's is generated)."""
    return engine.config_path or None


def _config_sound(engine: EngineControl) -> bool:
    return engine.alert_sound()

