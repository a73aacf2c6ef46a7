"""The value chart of one service: what its check read (a register, an OID, days left) over time.

Beside the latency chart and built the same way (gui/chart.py): one PlotDataItem, a preallocated
numpy ring buffer, `setData` only from one bounded-rate timer, only when something changed and the
chart is visible. Long ranges come from the journal's per-minute rollups (`value_history(...,
rollup=True)`: 1,440 points a day); live points on a long range are merged into per-minute means
here, so a day never holds 86,400 raw values. The y range fits the data (a register moving between
41 and 43 must not lie flat on a 0..100 scale). Reboots (the device restarted by itself) are
vertical amber lines: a counter that fell back to zero is explained on the chart itself.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QButtonGroup, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from core.snapshot import ServiceSnapshot
from gui import palette, presentation
from gui.chart import DEFAULT_CAPACITY, IDLE_SCROLL_S, RANGES, REDRAW_INTERVAL_MS, Ring

MAX_REBOOT_MARKERS = 20
Y_PAD = 0.15  # share of the data's span left free above and below the line


def y_range(lo: float, hi: float) -> tuple[float, float]:
    """The y range for data between `lo` and `hi`: padded, never empty (a constant value gets ±1, or
    ±10 % of itself when that is larger, so it is drawn as a line in the middle)."""
    span = hi - lo
    if span <= 0:
        half = max(1.0, abs(hi) * 0.1)
        return lo - half, hi + half
    return lo - span * Y_PAD, hi + span * Y_PAD


class ValueChart(QWidget):
    """Numeric values of the selected service over 5 min / 1 h / 24 h (objectName "value_chart").

    Signals:
        range_changed(int): the user picked another range (seconds: 300, 3600, 86400).

    Attributes:
        redraw_count: number of redraws so far (tests check the rate bound with it).
        last_redraw_ms: how long the last redraw took (benchmarks).
    """

    range_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None, *, capacity: int = DEFAULT_CAPACITY,
                 clock: Callable[[], float] = time.time, theme: palette.Theme = palette.LIGHT) -> None:
        super().__init__(parent)
        self.setObjectName("value_chart")
        self._clock = clock
        self._theme = theme
        self._range_s = RANGES[0][0]
        self._snap: ServiceSnapshot | None = None
        self._ring = Ring(capacity)
        self._last_count = 0  # values merged into the newest point (means on long ranges)
        self._reboots: deque[float] = deque(maxlen=MAX_REBOOT_MARKERS)
        self._dirty = False
        self._last_redraw_wall = 0.0
        self._y = (0.0, 1.0)
        self.redraw_count = 0
        self.last_redraw_ms = 0.0

        self._title = QLabel("No value")
        self._title.setObjectName("value_chart_title")
        font = self._title.font()
        font.setBold(True)
        self._title.setFont(font)
        # Never widen the window's right column for a long name: the title may be cut, not the table.
        self._title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._latest = QLabel("")
        self._latest.setObjectName("value_chart_latest")
        self._buttons = QButtonGroup(self)
        self._buttons.setExclusive(True)
        header = QHBoxLayout()
        header.setContentsMargins(4, 2, 4, 0)
        header.addWidget(self._title, 1)
        header.addWidget(self._latest)
        for seconds, text in RANGES:
            b = QPushButton(text)
            b.setObjectName(f"value_range_{seconds}")
            b.setCheckable(True)
            b.setChecked(seconds == self._range_s)
            b.setToolTip(f"Show the last {text}")
            b.setAccessibleName(f"Value range {text}")
            self._buttons.addButton(b, seconds)
            header.addWidget(b)
        self._buttons.idClicked.connect(self._on_buttons_id_clicked)

        self._plot = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem(orientation="bottom")}, enableMenu=False)
        self._plot.setAntialiasing(False)
        self._plot.setAccessibleName("Value chart")
        pi = self._plot.getPlotItem()
        pi.setMouseEnabled(x=False, y=False)
        pi.hideButtons()
        pi.setClipToView(True)
        pi.setDownsampling(auto=True, mode="peak")
        pi.showGrid(x=False, y=True, alpha=0.25)
        pi.getViewBox().disableAutoRange()
        self._curve = pg.PlotDataItem(connect="finite", antialias=False, name="value")
        self._curve.setClipToView(True)
        self._curve.setDownsampling(auto=True, method="peak")
        pi.addItem(self._curve)
        self._reboot_lines: list[pg.InfiniteLine] = []  # pooled, at most MAX_REBOOT_MARKERS

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(header)
        layout.addWidget(self._plot, 1)

        self._timer = QTimer(self)
        self._timer.setObjectName("value_chart_redraw")
        self._timer.setInterval(REDRAW_INTERVAL_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._timer.start()
        self.set_theme(theme)
        self.redraw_now()

    # ---- public contract ------------------------------------------------------------------------

    def set_service(self, snap: ServiceSnapshot | None) -> None:
        """Show `snap`'s service: clears the data and markers; the title names the check's target."""
        self._snap = snap
        self._ring.clear()
        self._last_count = 0
        self._reboots.clear()
        if snap is None:
            self._title.setText("No value")
        else:
            # Short: the chart sits in a narrow column; the target is in the tooltip and the detail panel.
            self._title.setText(f"{presentation.check_text(snap)} value")
            if snap.last_reboot_wall is not None:
                self._reboots.append(snap.last_reboot_wall)
        self._title.setToolTip(self._title.text() if snap is None else
                               f"{snap.name}: {presentation.check_text(snap)} value of {snap.target or snap.id}")
        self._plot.setAccessibleDescription(self._title.text())
        self._set_latest(snap)
        self._dirty = True

    def update_snapshot(self, snap: ServiceSnapshot) -> None:
        """The service's newer snapshot (the latest value shown in the header)."""
        self._snap = snap
        self._set_latest(snap)

    def set_history(self, points: list[tuple[float, float]]) -> None:
        """Replace the data with `points` ((wall s, value), oldest first)."""
        if points:
            arr = np.asarray(points, dtype=np.float64)
            xs, ys = arr[:, 0], arr[:, 1]
        else:
            xs = ys = np.empty(0)
        self._ring.replace(xs, ys)
        self._last_count = 1
        self._dirty = True

    def add_point(self, wall: float, value: float) -> None:
        """Append a live value; no redraw here (the timer draws at most 10 times a second)."""
        spacing = self._bucket_s()
        last = self._ring.last_index()
        if spacing > 0 and last is not None and wall - self._ring.x[last] < spacing:
            n = self._last_count
            self._ring.y[last] = (self._ring.y[last] * n + value) / (n + 1)
            self._last_count = n + 1
        else:
            self._ring.append(wall, float(value))
            self._last_count = 1
        self._dirty = True

    def add_reboot(self, wall: float) -> None:
        """Mark a reboot (the device restarted by itself) at `wall`."""
        self._reboots.append(wall)
        self._dirty = True

    def title_text(self) -> str:
        return self._title.text()

    def latest_text(self) -> str:
        return self._latest.text()

    def range_seconds(self) -> int:
        return self._range_s

    def set_range_seconds(self, seconds: int) -> None:
        """Programmatic range change (checks the button; emits nothing: the caller knows)."""
        button = self._buttons.button(seconds)
        if button is None:
            raise ValueError(f"unsupported range {seconds} s")
        button.setChecked(True)
        self._range_s = seconds
        self._dirty = True

    def y_range(self) -> tuple[float, float]:
        return self._y

    def curve_data(self) -> tuple[np.ndarray, np.ndarray]:
        """The value item's (x, y) arrays as last set."""
        x, y = self._curve.getOriginalDataset()
        return (np.empty(0) if x is None else x), (np.empty(0) if y is None else y)

    def reboot_x(self) -> list[float]:
        return [line.value() for line in self._reboot_lines if line.isVisible()]

    def set_theme(self, theme: palette.Theme) -> None:
        self._theme = theme
        self._plot.setBackground(theme.surface)
        for name in ("left", "bottom"):
            ax = self._plot.getPlotItem().getAxis(name)
            ax.setPen(pg.mkPen(theme.grid))
            ax.setTextPen(pg.mkPen(theme.muted))
        self._curve.setPen(pg.mkPen("#a9aaa5" if theme.name == "dark" else "#6a6a66", width=1))
        self._latest.setStyleSheet(f"color: {theme.muted};")
        self._dirty = True

    def redraw_now(self) -> float:
        """Redraw immediately (tests, benchmarks); returns the duration in ms."""
        start = time.perf_counter()
        self._redraw()
        self.last_redraw_ms = (time.perf_counter() - start) * 1000.0
        return self.last_redraw_ms

    # ---- internals ----------------------------------------------------------------------------------

    def _set_latest(self, snap: ServiceSnapshot | None) -> None:
        text = "" if snap is None else presentation.value_text(snap)
        self._latest.setText(f"now {text}" if text else "")

    def _bucket_s(self) -> float:
        # As the journal's rollups: raw points up to an hour, per-minute means beyond.
        return 0.0 if self._range_s <= 3600 else 60.0

    def _on_buttons_id_clicked(self, seconds: int) -> None:
        if seconds == self._range_s:
            return
        self._range_s = seconds
        self._dirty = True
        self.range_changed.emit(seconds)

    def _on_timer_timeout(self) -> None:
        if not self.isVisible():
            return
        if self._dirty or self._clock() - self._last_redraw_wall >= IDLE_SCROLL_S:
            self.redraw_now()

    def _redraw(self) -> None:
        now = self._clock()
        self._dirty = False
        self._last_redraw_wall = now
        self.redraw_count += 1
        xs, ys = self._ring.ordered()
        lo_x = now - self._range_s
        visible = ys[(xs >= lo_x) & np.isfinite(ys)]
        if visible.size:
            self._y = y_range(float(visible.min()), float(visible.max()))
        else:
            self._y = (0.0, 1.0)
        self._curve.setData(xs, ys, connect="finite")
        self._sync_reboot_lines()
        self._plot.getPlotItem().getViewBox().setRange(xRange=(lo_x, now), yRange=self._y, padding=0, update=True)

    def _sync_reboot_lines(self) -> None:
        pi = self._plot.getPlotItem()
        while len(self._reboot_lines) < len(self._reboots):
            line = pg.InfiniteLine(angle=90, movable=False, label=" reboot",
                                   labelOpts={"position": 0.9, "anchors": [(0, 0.5), (0, 0.5)]})
            line.setZValue(-4)
            pi.addItem(line, ignoreBounds=True)
            self._reboot_lines.append(line)
        colour = palette.colour(self._theme, "warning")
        for i, line in enumerate(self._reboot_lines):
            if i >= len(self._reboots):
                line.setVisible(False)
                continue
            line.setPen(pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine))
            line.setValue(self._reboots[i])
            line.label.setColor(QColor(colour))
            line.setVisible(True)

