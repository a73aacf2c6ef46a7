"""The main window as an assembly: it builds the views (service table, detail + charts, timeline,
alert banner, wall, status bar), the actions, menus and toolbar, and hands each concern to its owner —
gui/service_table.py (rows, selection, re-sort), gui/service_focus.py (what the detail and charts
show), gui/alert_notifier.py (banner, tray, sound), gui/wall_controller.py (wall mode),
gui/config_controller.py (open, reload, recent configs) and gui/window_settings.py (what is stored).
It routes the bridge's signals to them in one place; it holds no fault-tolerance logic of its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Coroutine, Mapping, Sequence

from PySide6.QtCore import QItemSelection, QModelIndex, QPoint, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (QApplication, QFrame, QLabel, QLineEdit, QMainWindow, QMenu, QScrollArea, QSplitter,
                               QStackedWidget, QToolBar, QVBoxLayout, QWidget)

from core.events import Event
from core.snapshot import AlertView, EngineControl, EngineStats, ServiceSnapshot
from gui import palette, presentation, theme as qtheme, window_settings
from gui.actions import SHORTCUTS, Confirm, ServiceActions, make_action
from gui.alert_banner import AlertBanner
from gui.alert_notifier import AlertNotifier
from gui.bridge import DEFAULT_INTERVAL_MS, EngineBridge
from gui.chart import LatencyChart
from gui.config_controller import ConfigController
from gui.config_watch import ConfigNotice
from gui.dependency_grouping import DependencyGrouping
from gui.detail_panel import DetailPanel
from gui.maintenance_view import install_maintenance_view
from gui.device_actions import DeviceActions
from gui.service_focus import ServiceFocus
from gui.service_model import SERVICE_ID_ROLE, status_counts
from gui.service_table import CheckTypeFilter, ServiceTable
from gui.timeline import TimelineView
from gui.tray import TrayNotifier
from gui.value_chart import ValueChart
from gui.wall import WallView
from gui.wall_controller import WallController

log = logging.getLogger("gui.window")

HISTORY_LIMIT = 1000


class MainWindow(QMainWindow):
    """The Faultwatch console window.

    Attributes:
        engine: the EngineControl (reads go through `bridge`, commands through `service_actions`).
        bridge: the EngineBridge polling the engine.
        table: the ServiceTable ("services_table"); model / proxy: its model and filter proxy.
        check_type_filter: CheckTypeFilter ("filter_check_type").
        detail: DetailPanel ("detail_panel"); chart: LatencyChart ("latency_chart").
        timeline_view: TimelineView (its table is "timeline").
        banner: AlertBanner ("alert_banner"); filter_box: QLineEdit ("filter_box").
        wall_view: WallView ("wall_view"), shown fullscreen in wall mode.
        service_actions: ServiceActions; device_actions: DeviceActions (the Device menu's editing).
        service_focus: ServiceFocus, the detail and charts on the current row.
        alert_notifier: AlertNotifier (banner, `tray` when asked for, sound).
        wall_controller: WallController.
        config: ConfigController; config_watch / config_notice: its watcher and notice strip.
        layout_settings: WindowLayout (geometry, splitters, columns, theme, grouping).
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
        self.theme = qtheme.theme_named(theme_name or window_settings.theme_name(settings, qtheme.DEFAULT_THEME))
        self._last_second = 0.0
        # Status-bar counts, updated from the changed services only (recounting 5,000 every poll
        # was half the poll); status_counts() is the from-scratch definition it is tested against.
        self._tally = presentation.Tally(lambda s: presentation.status_keys(s, *self.model.indicators(s)),
                                         presentation.STATUS_KEYS)
        self._counts: dict[str, int] = status_counts([])
        self._stats: EngineStats | None = None

        self.bridge = EngineBridge(engine, bridge_interval_ms, self)

        # ---- service table
        self.table = ServiceTable(self, theme=self.theme, now=now)
        self.model = self.table.service_model
        self.proxy = self.table.filter_proxy
        self.indicator_delegate = self.table.indicator_delegate

        self.filter_box = QLineEdit(self)
        self.filter_box.setObjectName("filter_box")
        self.filter_box.setAccessibleName("Filter services")
        self.filter_box.setPlaceholderText(
            f"Filter name, group or state… ({QKeySequence(SHORTCUTS['action_find']).toString()})")
        self.filter_box.setClearButtonEnabled(True)
        self.filter_box.setMaximumWidth(320)
        self.filter_box.textChanged.connect(self._on_filter_box_text_changed)
        self.check_type_filter = CheckTypeFilter(self)
        self.check_type_filter.check_type_changed.connect(self.proxy.set_check_type)

        # ---- other views
        self.banner = AlertBanner(self, now=now)
        self.config_notice = ConfigNotice(self)
        self.config = ConfigController(engine, settings, self.config_notice, self.spawn, self)
        self.config_watch = self.config.watcher  # device edits mark their own writes as seen
        self.detail = DetailPanel(self, theme=self.theme, now=now)
        self.detail.children_of = self._children_of
        self.chart = LatencyChart(self, theme=self.theme, clock=now)
        self.chart.setObjectName("latency_chart")
        self.value_chart = ValueChart(self, theme=self.theme, clock=now)  # shown for checks that read numbers
        self.timeline_view = TimelineView(self, theme=self.theme)
        self.wall_view = WallView(self, theme=self.theme)
        self.wall_view.setObjectName("wall_view")
        self.service_focus = ServiceFocus(engine, self.detail, self.chart, self.value_chart, self.timeline_view,
                                          self.model.snapshot, self.spawn, now, self)

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

        # ---- alerts: banner, tray (worst-state icon, counts tooltip, notices for new critical alerts), sound
        self.tray = TrayNotifier(self, theme=self.theme, now=now) if tray else None
        self.alert_notifier = AlertNotifier(self.banner, self.tray, self.service_actions,
                                            sound=engine.alert_sound() if sound is None else sound,
                                            alerts=lambda: self.bridge.alerts, snapshots=lambda: self.bridge.snapshots,
                                            now=now, parent=self)
        self.alert_notifier.open_requested.connect(self._on_alert_notifier_open_requested)
        self.alert_notifier.raise_requested.connect(self.raise_window)

        # ---- window actions, menus, toolbar, wall mode
        self._build_window_actions()
        self._build_menus_and_toolbar()
        for action in self.named_actions.values():
            self.addAction(action)  # shortcuts keep working with menus/toolbar hidden (wall mode)
        self.wall_controller = WallController(
            self, self.stack, console, self.wall_view, (self.menuBar(), self.toolbar, self.statusBar()), self.table,
            self.named_actions["action_wall_mode"], lambda: self.bridge.snapshots, self.alert_notifier.oldest_age)

        # ---- status bar
        self.summary_label = QLabel(self)
        self.summary_label.setObjectName("status_summary")
        self.progress_label = QLabel(self)
        self.progress_label.setObjectName("status_progress")
        self.statusBar().addPermanentWidget(self.progress_label)
        self.statusBar().addPermanentWidget(self.summary_label)

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
        self.config.message.connect(self._on_config_message)
        self.config.progress_changed.connect(self._on_config_progress_changed)
        self.timeline_view.exported.connect(self._on_timeline_view_exported)
        self.service_actions.message.connect(self._on_service_actions_message)
        self.service_actions.progress_changed.connect(self._on_service_actions_progress_changed)

        # Before restore_settings(): the right splitter's saved sizes include the panel's.
        self.maintenance_view = install_maintenance_view(self)  # scheduled windows, under the detail panel
        self.layout_settings = window_settings.WindowLayout(
            settings, self, {"main": self.main_splitter, "right": self.right_splitter,
                             "vertical": self.vertical_splitter},
            self.table.horizontalHeader(), self.named_actions["action_group_by_rack"])
        self.resize(1440, 900)
        self.restore_settings()
        self.dependency_grouping = DependencyGrouping(self, settings)  # View → Group by dependency
        self.set_theme(self.theme.name)
        self._update_summary()

    # ------------------------------------------------------------------ building
    def _build_window_actions(self) -> None:
        def make(name: str, text: str, tip: str, slot: Callable[[], object]) -> QAction:
            action = make_action(self, name, text, tip, slot)
            self.named_actions[name] = action
            return action

        make("action_open_config", "Open config…", "Load another configuration file", self.config.choose_and_open)
        make("action_quit", "Quit", "Quit Faultwatch", self.close)
        make("action_wall_mode", "Wall mode", "Full-screen wall of tiles (Esc or F11 to leave)",
             self.toggle_wall_mode)
        make("action_find", "Find…", "Filter the service table", self._on_find)
        make("action_reports", "Reports…", "Availability, outages, detection and recovery over a period; "
             "export CSV, HTML or PDF", self._on_reports)
        make("action_export_timeline", "Export timeline…", "Save the visible timeline rows as CSV",
             self.timeline_view.choose_file_and_export)
        group_by = make("action_group_by_rack", "Group by rack", "Keep rows grouped by group (rack)",
                        lambda: None)
        group_by.setCheckable(True)
        group_by.setChecked(True)
        group_by.toggled.connect(self.table.set_group_by_rack)
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
        self.config.attach_recent_menu(self.recent_menu)
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
        self.spawn(self.load_history())
        self.config.start()

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
        self.config.stop()
        for task in list(self.tasks):
            task.cancel()
        self.service_actions.cancel_all()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.wall_controller.leave()
        self.save_settings()
        self.shutdown()
        self.alert_notifier.hide_tray()
        super().closeEvent(event)
        self.closed.emit()

    async def load_history(self) -> None:
        """Load the journal's recent events into the timeline (it skips the ones it already has)."""
        try:
            events = await self.engine.journal_events(limit=HISTORY_LIMIT)
        except Exception:
            log.exception("loading the journal history failed")
            self.statusBar().showMessage("Could not load the event history", 8000)
            return
        self.timeline_view.model.load_history(list(events))

    # ------------------------------------------------------------------ selection
    def selected_ids(self) -> list[str]:
        return self.table.selected_ids()

    def selected_snapshots(self) -> list[ServiceSnapshot]:
        return self.table.selected_snapshots()

    def select_services(self, service_ids: Sequence[str]) -> None:
        """Select rows by service id (the first becomes current)."""
        self.table.select_services(service_ids)

    def _on_table_selection_changed(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        self.service_actions.refresh_state()

    def _on_table_current_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        sid = current.data(SERVICE_ID_ROLE) if current.isValid() else None
        self.service_focus.focus(str(sid) if sid is not None else None)

    def catch_up(self) -> None:
        """An engine that could not be seen came back: redraw the selected service's charts from the
        engine's history (it has the samples taken meanwhile), and load its journal's recent events into
        the timeline (the window loaded history at start, before this engine could answer)."""
        self.service_focus.reload_history()
        self.spawn(self.load_history())

    # ------------------------------------------------------------------ bridge → views
    def _on_bridge_snapshots_changed(self, changed: Mapping[str, ServiceSnapshot]) -> None:
        types_changed = self.table.update_snapshots(changed)
        names = self.timeline_view.model.names
        for sid, snap in changed.items():
            names[sid] = snap.name
        if self._tally.update(changed):
            self._counts = self._tally.counts()
        self.service_focus.update_snapshots(changed)
        if types_changed:
            self.check_type_filter.update_choices(self.bridge.snapshots.values())
        if any(s.id in changed for s in self.selected_snapshots()):
            self.service_actions.refresh_state()
        self.wall_controller.show_snapshots()
        self.alert_notifier.show_snapshots(self.bridge.snapshots, names)
        self._update_summary()

    def _on_bridge_services_removed(self, removed: Sequence[str]) -> None:
        self.table.remove_services(removed)
        self.check_type_filter.update_choices(self.bridge.snapshots.values())
        if self._tally.update({}, removed):
            self._counts = self._tally.counts()
        self.service_focus.remove_services(removed)
        self.wall_controller.show_snapshots()
        self._update_summary()

    def _on_bridge_events_arrived(self, events: Sequence[Event]) -> None:
        self.timeline_view.model.add_events(events)
        self.service_focus.add_events(events)

    def _on_bridge_alerts_changed(self, alerts: list[AlertView]) -> None:
        self.alert_notifier.show_alerts(alerts)
        self.wall_controller.show_alert_age()

    def open_alert(self, alert_id: str, service: str) -> None:
        """Bring the window up on an alert: out of wall mode, raised, its device (or its rack) selected."""
        self.alert_notifier.open_alert(alert_id, service)

    def _on_alert_notifier_open_requested(self, ids: list[str]) -> None:
        self.wall_controller.leave()
        self.raise_window()
        if ids and self.filter_box.text():
            self.filter_box.clear()  # a filtered-out row cannot be shown
        self.select_services(ids)
        self.table.setFocus()

    def _children_of(self, service_id: str) -> list[str]:
        return sorted(s.name for s in self.bridge.snapshots.values()
                      if service_id in getattr(s, "depends_on", ()))

    def raise_window(self) -> None:
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
        self.table.refresh()
        self.detail.refresh()
        self.alert_notifier.refresh_age()
        self.wall_controller.show_alert_age()

    def summary_text(self) -> str:
        c = self._counts
        # One category per service (gui/presentation.py, as on the wall); the suppressed ones are
        # named by why: forced, maintenance, paused.
        parts = [f"{c['healthy']} healthy", f"{c['degraded']} degraded", f"{c['unhealthy']} unhealthy",
                 f"{c['forced']} forced"]
        for key in ("maintenance", "paused", "blocked", "recovering", "unknown"):
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
        if self.is_wall_mode():
            return
        self.filter_box.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.filter_box.selectAll()

    def _on_table_custom_context_menu_requested(self, pos: QPoint) -> None:
        menu = QMenu(self.table)
        menu.setObjectName("services_context_menu")
        self._add_service_actions(menu)
        menu.popup(self.table.viewport().mapToGlobal(pos))

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
    def open_config(self, path: str) -> asyncio.Future[Any]:
        """Ask the engine to load `path`; a refused config shows its one-line error."""
        return self.config.open_config(path)

    def recent_configs(self) -> list[str]:
        return self.config.recent_configs()

    def _on_config_message(self, text: str, timeout_ms: int) -> None:
        self.statusBar().showMessage(text, timeout_ms)

    def _on_config_progress_changed(self, text: str) -> None:
        self.progress_label.setText(text)

    # ------------------------------------------------------------------ wall mode
    def is_wall_mode(self) -> bool:
        return self.wall_controller.is_active()

    def toggle_wall_mode(self) -> None:
        """Swap the console for the full-screen wall (and back)."""
        self.wall_controller.toggle()

    # ------------------------------------------------------------------ theme + settings
    def set_theme(self, name: str) -> None:
        self.theme = qtheme.theme_named(name)
        app = QApplication.instance()
        if isinstance(app, QApplication):
            qtheme.apply_theme(app, self.theme)
        self.table.set_theme(self.theme)
        self.detail.set_theme(self.theme)
        self.timeline_view.set_theme(self.theme)
        self.chart.set_theme(self.theme)
        self.value_chart.set_theme(self.theme)
        self.wall_view.set_theme(self.theme)
        self.alert_notifier.set_theme(self.theme)
        for action in self.theme_group.actions():
            action.setChecked(action.data() == self.theme.name)

    def _on_theme_group_triggered(self, action: QAction) -> None:
        self.set_theme(str(action.data()))

    def save_settings(self) -> None:
        self.layout_settings.save(self.theme.name, geometry=not self.is_wall_mode())

    def restore_settings(self) -> None:
        self.layout_settings.restore()
