"""A time chart: one service's series over 5 min / 1 h / 24 h, drawn at a bounded rate.

What the latency and the value chart share (gui/chart.py, gui/value_chart.py), following pyqtgraph's
scrollingPlots/PlotSpeedTest practice: a preallocated numpy ring buffer, one PlotDataItem, range
buttons, and `setData` only from one ≤ 10 Hz timer, only when something changed (or once a second to
scroll the time axis) and only while the chart is visible. A subclass adds its own plot items and
draws in `_redraw()`.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QButtonGroup, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from gui import palette

RANGES: tuple[tuple[int, str], ...] = ((300, "5 min"), (3600, "1 h"), (86400, "24 h"))
DEFAULT_CAPACITY = 8192
REDRAW_INTERVAL_MS = 100  # ≤ 10 Hz
IDLE_SCROLL_S = 1.0  # with no new data, still scroll the time axis this often


class Ring:
    """A preallocated (x, y) ring buffer; appends never allocate, `ordered()` copies oldest→newest.
    Shared by the latency and the value chart."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.x = np.zeros(capacity, dtype=np.float64)
        self.y = np.zeros(capacity, dtype=np.float64)
        self.head = 0  # next write index
        self.count = 0

    def clear(self) -> None:
        self.head = 0
        self.count = 0

    def append(self, x: float, y: float) -> None:
        self.x[self.head] = x
        self.y[self.head] = y
        self.head = (self.head + 1) % self.capacity
        if self.count < self.capacity:
            self.count += 1

    def last_index(self) -> int | None:
        return None if self.count == 0 else (self.head - 1) % self.capacity

    def replace(self, xs: np.ndarray, ys: np.ndarray) -> None:
        """Fill from arrays (oldest first); keeps the newest `capacity` values, in place."""
        n = min(len(xs), self.capacity)
        self.x[:n] = xs[len(xs) - n:]
        self.y[:n] = ys[len(ys) - n:]
        self.count = n
        self.head = n % self.capacity

    def ordered(self) -> tuple[np.ndarray, np.ndarray]:
        if self.count < self.capacity:
            return self.x[: self.count].copy(), self.y[: self.count].copy()
        return (np.concatenate((self.x[self.head:], self.x[: self.head])),
                np.concatenate((self.y[self.head:], self.y[: self.head])))



class TimeChart(QWidget):
    """The shared frame of a time chart: title, range buttons, plot, curve, redraw timer.

    Signals:
        range_changed(int): the user picked another range (seconds: 300, 3600, 86400).

    Attributes:
        last_redraw_ms: how long the last redraw took in our code (data prep + setData + ranges), or,
            with `redraw_now(paint=True)`, including a synchronous paint of the plot; for benchmarks.
        redraw_count: number of redraws so far (tests check the rate bound with it).
    """

    range_changed = Signal(int)

    def __init__(self, parent: QWidget | None, *, name: str, what: str, empty_title: str, button_prefix: str,
                 capacity: int, clock: Callable[[], float], theme: palette.Theme) -> None:
        """`name` is the objectName ("latency_chart"); `what` the series in words ("Latency")."""
        super().__init__(parent)
        self.setObjectName(name)
        self._clock = clock
        self._theme = theme
        self._range_s = RANGES[0][0]
        self._ring = Ring(capacity)
        self._dirty = False
        self._last_redraw_wall = 0.0
        self.last_redraw_ms = 0.0
        self.redraw_count = 0

        self._title = QLabel(empty_title)
        self._title.setObjectName(f"{name}_title")
        font = self._title.font()
        font.setBold(True)
        self._title.setFont(font)
        self._buttons = QButtonGroup(self)
        self._buttons.setExclusive(True)
        self._header = QHBoxLayout()
        self._header.setContentsMargins(4, 2, 4, 0)
        self._header.addWidget(self._title, 1)
        self._range_buttons: list[QPushButton] = []
        for seconds, text in RANGES:
            b = QPushButton(text)
            b.setObjectName(f"{button_prefix}{seconds}")
            b.setCheckable(True)
            b.setChecked(seconds == self._range_s)
            b.setToolTip(f"Show the last {text}")
            b.setAccessibleName(f"{what} range {text}")
            b.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            self._buttons.addButton(b, seconds)
            self._range_buttons.append(b)
            self._header.addWidget(b)
        self._buttons.idClicked.connect(self._on_buttons_id_clicked)

        self._plot = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem(orientation="bottom")}, enableMenu=False)
        self._plot.setAntialiasing(False)
        self._plot.setAccessibleName(f"{what} chart")
        pi = self._plot.getPlotItem()
        pi.setMouseEnabled(x=False, y=False)
        pi.hideButtons()
        pi.setClipToView(True)
        pi.setDownsampling(auto=True, mode="peak")
        pi.showGrid(x=False, y=True, alpha=0.25)
        pi.getViewBox().disableAutoRange()
        self._curve = pg.PlotDataItem(connect="finite", antialias=False, name=what.lower())
        self._curve.setClipToView(True)
        self._curve.setDownsampling(auto=True, method="peak")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(self._header)
        layout.addWidget(self._plot, 1)

        self._timer = QTimer(self)
        self._timer.setObjectName(f"{name}_redraw")
        self._timer.setInterval(REDRAW_INTERVAL_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._timer.start()

    # ---- public contract ------------------------------------------------------------------------

    def title_text(self) -> str:
        return self._title.text()

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

    def set_theme(self, theme: palette.Theme) -> None:
        self._theme = theme
        self._plot.setBackground(theme.surface)
        for name in ("left", "bottom"):
            ax = self._plot.getPlotItem().getAxis(name)
            ax.setPen(pg.mkPen(theme.grid))
            ax.setTextPen(pg.mkPen(theme.muted))
        self._curve.setPen(pg.mkPen("#a9aaa5" if theme.name == "dark" else "#6a6a66", width=1))
        self._dirty = True

    def redraw_now(self, paint: bool = False) -> float:
        """Redraw immediately (tests, benchmarks). With `paint`, also paint the plot synchronously.

        Returns the duration in ms (also kept in `last_redraw_ms`).
        """
        start = time.perf_counter()
        now = self._clock()
        self._dirty = False
        self._last_redraw_wall = now
        self.redraw_count += 1
        self._redraw(now)
        if paint:
            self._plot.viewport().repaint()
        self.last_redraw_ms = (time.perf_counter() - start) * 1000.0
        return self.last_redraw_ms

    def curve_data(self) -> tuple[np.ndarray, np.ndarray]:
        """The curve's (x, y) arrays as last set (before clipping to the view/downsampling)."""
        x, y = self._curve.getOriginalDataset()
        return (np.empty(0) if x is None else x), (np.empty(0) if y is None else y)

    # ---- for subclasses -----------------------------------------------------------------------------

    def _redraw(self, now: float) -> None:
        raise NotImplementedError

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
