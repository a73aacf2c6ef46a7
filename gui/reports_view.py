"""The Reports window: availability, outages, time to detect and recover, over a chosen period.

Presentation only: the figures come from core/report.py (read-only journal connection, computed on a
worker thread so the window never freezes), the charts are the same SVG the HTML export embeds,
and the exports are core/report_render.py's CSV and HTML and gui/report_pdf.py's PDF.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PySide6.QtCore import (QAbstractTableModel, QByteArray, QDateTime, QModelIndex, QObject,
                            QPersistentModelIndex, QSortFilterProxyModel, Qt, QTimeZone, Signal)
from PySide6.QtGui import QImage, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import (QComboBox, QDateTimeEdit, QFileDialog, QHBoxLayout, QHeaderView, QLabel,
                               QPushButton, QScrollArea, QSplitter, QTableView, QTabWidget, QVBoxLayout, QWidget)

from core.config import Config
from core.report import Figures, Outage, Report, ReportError, load_report
from core.report_cli import request_from_config
from core.report_render import chart_svgs, fmt_pct, fmt_short, render_csv, render_html
from core.clock import iso_utc

log = logging.getLogger("gui.reports")

PERIODS: tuple[tuple[str, float | None], ...] = (
    ("Last hour", 3600.0), ("Last 24 hours", 86_400.0), ("Last 7 days", 7 * 86_400.0), ("Custom…", None))
SORT_ROLE = Qt.ItemDataRole.UserRole + 1

JournalSource = Callable[[], Path | None]
ConfigSource = Callable[[], Config | None]


class _Columns:
    """The device table: header, how a row shows, how it sorts."""

    HEAD = ("device", "group", "availability", "up", "downtime", "outages", "longest", "TTD", "TTR", "MTBF",
            "restarts ok/all", "failovers", "breaker open", "reboots", "degraded", "maintenance", "monitored")

    @staticmethod
    def values(sid: str, group: str, f: Figures) -> tuple[tuple[str, Any], ...]:
        def dur(v: float | None) -> tuple[str, Any]:
            return fmt_short(v), (-1.0 if v is None else v)
        return (
            (sid, sid), (group, group), (fmt_pct(f.availability_pct), -1.0 if f.availability_pct is None
                                        else f.availability_pct),
            (fmt_pct(f.up_pct), -1.0 if f.up_pct is None else f.up_pct),
            dur(f.downtime_s), (str(f.outages), f.outages), dur(f.longest_outage_s), dur(f.ttd_s), dur(f.ttr_s),
            dur(f.mtbf_s), (f"{f.restarts_ok}/{f.restarts}", f.restarts), (str(f.failovers), f.failovers),
            dur(f.breaker_open_s), (str(f.reboots), f.reboots), dur(f.degraded_s), dur(f.maintenance_s),
            dur(f.monitored_s))


class ReportTableModel(QAbstractTableModel):
    """One row per device: plain values held, formatted once; `SORT_ROLE` gives the raw number."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[tuple[tuple[str, Any], ...]] = []

    def set_report(self, report: Report | None) -> None:
        self.beginResetModel()
        self._rows = [] if report is None else [_Columns.values(s.id, s.group, s.figures) for s in report.services]
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(_Columns.HEAD)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return _Columns.HEAD[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        text, key = self._rows[index.row()][index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return text
        if role == SORT_ROLE:
            return key
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() >= 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class OutageTableModel(QAbstractTableModel):
    HEAD = ("device", "start (UTC)", "end (UTC)", "duration", "cause", "TTD", "TTR", "steps")

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[Outage] = []

    def set_report(self, report: Report | None) -> None:
        self.beginResetModel()
        self._rows = [] if report is None else list(report.outages)
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.HEAD)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEAD[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        o = self._rows[index.row()]
        col = index.column()
        if role == SORT_ROLE:
            return (o.service, o.start, o.end, o.duration_s, o.cause, o.ttd_s or -1.0, o.ttr_s or -1.0,
                    len(o.steps))[col]
        if role == Qt.ItemDataRole.ToolTipRole and col == 7:
            return "\n".join(s.text() for s in o.steps) or None
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if col == 0:
            return o.service
        if col in (1, 2):
            t = o.start if col == 1 else o.end
            clipped = o.clipped_start if col == 1 else o.end_reason != "recovered"
            suffix = "" if not clipped else (" (before)" if col == 1 else f" ({o.end_reason.replace('_', ' ')})")
            return iso_utc(t)[:19].replace("T", " ") + suffix
        if col == 3:
            return fmt_short(o.duration_s)
        if col == 4:
            return o.cause
        if col in (5, 6):
            return fmt_short(o.ttd_s if col == 5 else o.ttr_s)
        return f"{len(o.steps)} step(s)" if o.steps else "—"


class _Results(QObject):
    """Carries finished work from the worker thread to the GUI thread (queued signals)."""

    done = Signal(object, str)  # Report | None, error text
    exported = Signal(str)  # status line


class ReportsView(QWidget):
    """Period picker, sortable device table, availability chart, outage timeline, outage list, exports.

    Attributes:
        report: the report on show (None until the first computation finishes).
        computing: a computation is running on the worker thread.
        last_compute_s: how long the last computation took (shown in the status line).

    Signals:
        report_ready: a new report is on show (or an error was shown).
    """

    report_ready = Signal()

    def __init__(self, journal: JournalSource, config: ConfigSource, parent: QWidget | None = None,
                 *, now: Callable[[], float] = time.time) -> None:
        super().__init__(parent)
        self.setObjectName("reports_view")
        self.setWindowTitle("Faultwatch — Reports")
        self._journal = journal
        self._config = config
        self._now = now
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="report")
        self._results = _Results(self)
        self._results.done.connect(self._on_results_done)
        self._results.exported.connect(self._on_results_exported)
        self.report: Report | None = None
        self.computing = False
        self.last_compute_s = 0.0
        self._pending = False

        self.period = QComboBox(self)
        self.period.setObjectName("report_period")
        for label, seconds in PERIODS:
            self.period.addItem(label, seconds)
        self.period.setCurrentIndex(1)
        self.since_edit = QDateTimeEdit(self)
        self.since_edit.setObjectName("report_since")
        self.until_edit = QDateTimeEdit(self)
        self.until_edit.setObjectName("report_until")
        for edit in (self.since_edit, self.until_edit):
            edit.setTimeZone(QTimeZone.utc())
            edit.setDisplayFormat("yyyy-MM-dd HH:mm 'UTC'")
            edit.setCalendarPopup(True)
            edit.setEnabled(False)
        self.refresh_button = QPushButton("Refresh", self)
        self.refresh_button.setObjectName("report_refresh")
        self.status = QLabel(self)
        self.status.setObjectName("report_status")
        self.export_buttons: dict[str, QPushButton] = {}
        top = QHBoxLayout()
        top.addWidget(QLabel("Period:", self))
        top.addWidget(self.period)
        top.addWidget(self.since_edit)
        top.addWidget(QLabel("→", self))
        top.addWidget(self.until_edit)
        self.group_box = QComboBox(self)
        self.group_box.setObjectName("report_group")
        self.group_box.addItem("All groups", None)
        top.addWidget(self.group_box)
        top.addWidget(self.refresh_button)
        top.addStretch(1)
        for fmt in ("csv", "html", "pdf"):
            button = QPushButton(f"Export {fmt.upper()}…", self)
            button.setObjectName(f"report_export_{fmt}")
            button.setEnabled(False)
            button.clicked.connect(lambda _=False, f=fmt: self._on_export_clicked(f))
            self.export_buttons[fmt] = button
            top.addWidget(button)

        self.summary = QLabel(self)
        self.summary.setObjectName("report_summary")
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.model = ReportTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.table = QTableView(self)
        self.table.setObjectName("report_table")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(2, Qt.SortOrder.AscendingOrder)  # worst availability first
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.outage_model = OutageTableModel(self)
        outage_proxy = QSortFilterProxyModel(self)
        outage_proxy.setSourceModel(self.outage_model)
        outage_proxy.setSortRole(SORT_ROLE)
        self.outage_table = QTableView(self)
        self.outage_table.setObjectName("report_outages")
        self.outage_table.setModel(outage_proxy)
        self.outage_table.setSortingEnabled(True)
        self.outage_table.sortByColumn(1, Qt.SortOrder.AscendingOrder)
        self.outage_table.verticalHeader().hide()
        self.outage_table.horizontalHeader().setStretchLastSection(True)
        # QLabels showing the SVG rendered once (QtSvg), not QSvgWidgets: the packaged app leaves
        # QtSvgWidgets out, and a picture that only changes with the report needs no live SVG.
        self.chart = QLabel(self)
        self.chart.setObjectName("report_chart")
        self.timeline = QLabel(self)
        self.timeline.setObjectName("report_timeline")
        charts = QWidget(self)
        charts_layout = QHBoxLayout(charts)
        for title, widget in (("<b>Availability by device</b> (worst first)", self.chart),
                              ("<b>Outage timeline</b> (red: down, grey: engine not running)", self.timeline)):
            column = QVBoxLayout()
            column.addWidget(QLabel(title, charts))
            column.addWidget(widget)
            column.addStretch(1)
            charts_layout.addLayout(column)
        charts_layout.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setObjectName("report_charts")
        scroll.setWidget(charts)
        scroll.setWidgetResizable(True)
        # Table above, both charts below, in one tab: the whole picture at a glance.
        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(scroll)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([400, 400])
        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("report_tabs")
        self.tabs.addTab(self.splitter, "Devices")
        self.tabs.addTab(self.outage_table, "Outages")

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.status)

        self.period.currentIndexChanged.connect(self._on_period_current_index_changed)
        self.group_box.currentIndexChanged.connect(self._on_group_box_current_index_changed)
        self.refresh_button.clicked.connect(self.refresh)
        self._set_custom_range_from_preset(86_400.0)
        self.resize(1400, 900)

    # ------------------------------------------------------------------ period

    def period_bounds(self) -> tuple[float, float]:
        seconds = self.period.currentData()
        if seconds is None:
            return (self.since_edit.dateTime().toSecsSinceEpoch() * 1.0,
                    self.until_edit.dateTime().toSecsSinceEpoch() * 1.0)
        until = self._now()
        return until - float(seconds), until

    def set_custom_period(self, since: float, until: float) -> None:
        """Choose "Custom…" with these bounds (wall seconds) and recompute."""
        self.period.setCurrentIndex(len(PERIODS) - 1)
        self.since_edit.setDateTime(QDateTime.fromSecsSinceEpoch(int(since), QTimeZone.utc()))
        self.until_edit.setDateTime(QDateTime.fromSecsSinceEpoch(int(until), QTimeZone.utc()))
        self.refresh()

    def _set_custom_range_from_preset(self, seconds: float) -> None:
        until = self._now()
        self.since_edit.setDateTime(QDateTime.fromSecsSinceEpoch(int(until - seconds), QTimeZone.utc()))
        self.until_edit.setDateTime(QDateTime.fromSecsSinceEpoch(int(until), QTimeZone.utc()))

    def _fill_groups(self, config: Config | None) -> None:
        """The group picker lists the config's groups (kept selected across refreshes)."""
        groups = sorted({s.group for s in config.services}) if config is not None else []
        have = [self.group_box.itemData(i) for i in range(1, self.group_box.count())]
        if groups == have:
            return
        chosen = self.group_box.currentData()
        self.group_box.blockSignals(True)
        self.group_box.clear()
        self.group_box.addItem("All groups", None)
        for g in groups:
            self.group_box.addItem(g, g)
        self.group_box.setCurrentIndex(max(0, self.group_box.findData(chosen)) if chosen in groups else 0)
        self.group_box.blockSignals(False)

    def _on_group_box_current_index_changed(self, _index: int) -> None:
        self.refresh()

    def _on_period_current_index_changed(self, _index: int) -> None:
        custom = self.period.currentData() is None
        for edit in (self.since_edit, self.until_edit):
            edit.setEnabled(custom)
        if not custom:
            self._set_custom_range_from_preset(float(self.period.currentData()))
            self.refresh()

    # ------------------------------------------------------------------ computing

    def refresh(self) -> None:
        """Recompute on the worker thread; a request while one runs is queued (once)."""
        if self.computing:
            self._pending = True
            return
        path = self._journal()
        if path is None:
            self._show(None, "no journal: this engine does not keep one")
            return
        since, until = self.period_bounds()
        if since >= until:
            self._show(None, "the period is empty: the start must be before the end")
            return
        config = self._config()
        self._fill_groups(config)
        request = request_from_config(config, since, until, group=self.group_box.currentData())
        self.computing = True
        self.status.setText("computing…")
        started = time.perf_counter()

        def work() -> tuple[Report, float]:
            return load_report(path, request), time.perf_counter() - started

        future = self._pool.submit(work)
        future.add_done_callback(self._on_future_done)

    def _on_future_done(self, future: Future[tuple[Report, float]]) -> None:
        # Worker thread: hand over through a queued signal, touch no widget here.
        try:
            report, spent = future.result()
        except ReportError as exc:
            self._results.done.emit(None, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a bug must reach the status line, not vanish in a thread
            log.exception("report computation failed")
            self._results.done.emit(None, f"report failed: {exc}")
            return
        self.last_compute_s = spent
        self._results.done.emit(report, "")

    def _on_results_done(self, report: Report | None, error: str) -> None:
        self.computing = False
        self._show(report, error)
        if self._pending:
            self._pending = False
            self.refresh()

    def _show(self, report: Report | None, error: str) -> None:
        self.report = report
        self.model.set_report(report)
        self.outage_model.set_report(report)
        for button in self.export_buttons.values():
            button.setEnabled(report is not None)
        if report is None:
            self.summary.setText("")
            self.chart.clear()
            self.timeline.clear()
            self.status.setText(f"✖ {error}")
        else:
            svgs = chart_svgs(report)
            for widget, name in ((self.chart, "chart:availability"), (self.timeline, "chart:timeline")):
                widget.setPixmap(_svg_pixmap(svgs[name], self.devicePixelRatioF()))
            f = report.fleet
            down = sum(b - a for a, b in report.gaps)
            self.summary.setText(
                f"<b>{fmt_pct(f.availability_pct)}</b> available ({fmt_pct(f.up_pct)} up incl. degraded) · "
                f"{f.outages} outages, "
                f"{fmt_short(f.downtime_s)} down (longest {fmt_short(f.longest_outage_s)}) · "
                f"TTD {fmt_short(f.ttd_s)} · TTR {fmt_short(f.ttr_s)} · MTBF {fmt_short(f.mtbf_s)} · "
                f"restarts {f.restarts_ok}/{f.restarts} ok · breaker open {fmt_short(f.breaker_open_s)} · "
                f"reboots {f.reboots} · engine not running {fmt_short(down)}")
            self.status.setText(f"{iso_utc(report.since)[:16]} → {iso_utc(report.until)[:16]} UTC · "
                                f"{len(report.services)} devices · computed in {self.last_compute_s * 1000:.0f} ms")
        self.report_ready.emit()

    # ------------------------------------------------------------------ export

    def export(self, fmt: str, path: Path) -> None:
        """Write the report on show as csv, html or pdf."""
        if self.report is None:
            raise ValueError("no report to export")
        _export(self.report, fmt, path)

    def _on_export_clicked(self, fmt: str) -> None:
        if self.report is None:
            return
        stamp = iso_utc(self.report.until)[:16].replace(":", "").replace("-", "")
        name, _ = QFileDialog.getSaveFileName(self, f"Export report as {fmt.upper()}",
                                              f"faultwatch-report-{stamp}.{fmt}", f"{fmt.upper()} (*.{fmt})")
        if not name:
            return
        # On the worker thread: a PDF of a big fleet's day is a hundred pages and takes seconds.
        # (QTextDocument, QImage and QPdfWriter are reentrant; nothing here touches a widget.)
        self.status.setText(f"saving {name}…")
        report = self.report

        def work() -> None:
            try:
                _export(report, fmt, Path(name))
            except OSError as exc:
                self._results.exported.emit(f"✖ export failed: {exc.strerror or exc}")
                return
            except Exception as exc:  # noqa: BLE001 - show it, do not lose it in the thread
                log.exception("export failed")
                self._results.exported.emit(f"✖ export failed: {exc}")
                return
            self._results.exported.emit(f"saved {name}")

        self._pool.submit(work)

    def _on_results_exported(self, text: str) -> None:
        self.status.setText(text)

    def closeEvent(self, event: Any) -> None:
        # The window is only hidden (File → Reports… shows it again), so its worker stays; a pending
        # recomputation is dropped, one already running finishes into the hidden window.
        self._pending = False
        super().closeEvent(event)


def _svg_pixmap(svg: str, ratio: float) -> QPixmap:
    """The SVG drawn at the screen's pixel ratio (sharp on HiDPI), laid out at its own size."""
    renderer = QSvgRenderer(QByteArray(svg.encode("utf-8")))
    size = renderer.defaultSize()
    image = QImage(max(1, round(size.width() * ratio)), max(1, round(size.height() * ratio)),
                   QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(0)
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    image.setDevicePixelRatio(ratio)
    return QPixmap.fromImage(image)


def _export(report: Report, fmt: str, path: Path) -> None:
    if fmt == "pdf":
        from gui.report_pdf import write_pdf
        write_pdf(report, path)
    elif fmt in ("csv", "html"):
        text = render_csv(report) if fmt == "csv" else render_html(report)
        path.write_text(text, encoding="utf-8", newline="")
    else:
        raise ValueError(f"unknown format {fmt!r}")


def engine_sources(engine: object) -> tuple[JournalSource, ConfigSource]:
    """Where the console's own engine keeps its journal and config: an EngineThread's runtime, or a
    ChildEngine's files (the window holds either inside a MultiEngine; a test's fake engine has neither)."""
    own = getattr(engine, "local", None) or engine

    def journal() -> Path | None:
        child_path = getattr(own, "journal_path", None)
        if isinstance(child_path, Path):
            return child_path
        inner = getattr(getattr(own, "runtime", None), "engine", None)
        path = getattr(getattr(inner, "journal", None), "path", None)
        return Path(path) if path is not None else None

    def config() -> Config | None:
        inner = getattr(getattr(own, "runtime", None), "engine", None)
        value = getattr(inner, "config", None) if inner is not None else getattr(own, "config", None)
        return value if isinstance(value, Config) else None

    return journal, config


def show_reports(parent: QWidget, engine: object, existing: ReportsView | None = None) -> ReportsView:
    """Open (or bring forward) the Reports window for the running engine and compute the default period."""
    if existing is None:
        journal, config = engine_sources(engine)
        existing = ReportsView(journal, config, parent)
        existing.setWindowFlag(Qt.WindowType.Window, True)
        existing.refresh()
    existing.show()
    existing.raise_()
    existing.activateWindow()
    return existing
