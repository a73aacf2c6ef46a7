"""The response-time chart of one service: latency against its slow/timeout thresholds.

Follows pyqtgraph's scrollingPlots/PlotSpeedTest practice: one PlotDataItem for the line, numpy ring
buffers preallocated once, `setData` only from one bounded-rate timer and only when something changed
and the chart is visible; plot items are created once and reused. The line is a quiet grey; colour is
spent only on the thresholds, failed checks (red ticks at the bottom, besides the gap in the line) and
markers (anomalies, breaker transitions).

Long ranges: the caller passes rollups for 24 h (`latency_history(..., rollup=True)`); live points on
a long range are merged into buckets here (peak kept), so a day never holds 86,400 raw samples.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPainterPath
from PySide6.QtWidgets import QWidget

from core.snapshot import ServiceSnapshot
from gui import palette
from gui.time_chart import DEFAULT_CAPACITY, RANGES, Ring, TimeChart

__all__ = ["DEFAULT_CAPACITY", "RANGES", "LatencyChart", "Ring", "format_threshold", "y_range_top"]

MAX_ANOMALY_MARKERS = 50
MAX_BREAKER_MARKERS = 20
Y_FLOOR_MS = 2.0  # the smallest y range: a 0.3-0.7 ms loopback jitter should not fill the chart
Y_HEADROOM = 1.3  # the range's top is this much above the highest visible value
THRESHOLD_REACH = 3.0  # a threshold within this factor of the data's top is drawn as a line in range

# A failed-check tick: a short vertical stroke rising from the point (symbol coordinates are y-down).
_TICK = QPainterPath()
_TICK.moveTo(-0.06, 0.0)
_TICK.lineTo(0.06, 0.0)
_TICK.lineTo(0.06, -1.0)
_TICK.lineTo(-0.06, -1.0)
_TICK.closeSubpath()


def _peak_reduce(xs: np.ndarray, ys: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Bucket to at most `limit` points keeping each bucket's peak (NaN only if all failed)."""
    n = len(xs)
    if n <= limit:
        return xs, ys
    k = -(-n // limit)
    m = n // k
    head = n - m * k  # the oldest leftover points go; the newest are kept whole
    bx = xs[head:].reshape(m, k)[:, 0]
    by = ys[head:].reshape(m, k)
    finite = np.isfinite(by)
    peak = np.where(finite, by, -np.inf).max(axis=1)
    peak[~finite.any(axis=1)] = np.nan
    return bx, peak


def format_threshold(ms: float) -> str:
    """"300 ms", "2 s", "1.5 s"."""
    return f"{ms:g} ms" if ms < 1000 else f"{ms / 1000:g} s"


def y_range_top(data_max: float, thresholds: tuple[float, ...]) -> tuple[float, list[float]]:
    """The y range's top for data peaking at `data_max`, and the thresholds left above it.

    The range fits the data (a 1–20 ms line must not lie flat on the floor of a 0..2 s scale); a
    threshold close enough to matter (within THRESHOLD_REACH × the data's top) is pulled into range
    so its line shows; the others are reported, to be shown as a note at the top edge.
    """
    top = max(Y_HEADROOM * data_max, Y_FLOOR_MS)
    reach = max(data_max, Y_FLOOR_MS) * THRESHOLD_REACH
    for t in sorted(thresholds):
        if top < t <= reach:
            top = t * 1.12
    return top, [t for t in sorted(thresholds) if t >= top]


class LatencyChart(TimeChart):
    """Latency of the selected service over 5 min / 1 h / 24 h (objectName "latency_chart").

    The frame, range buttons, redraw timer and `range_changed`, `redraw_count`, `last_redraw_ms` are
    gui/time_chart.py's; this class adds the thresholds, failed-check ticks and markers.
    """

    def __init__(self, parent: QWidget | None = None, *, capacity: int = DEFAULT_CAPACITY,
                 clock: Callable[[], float] = time.time, theme: palette.Theme = palette.LIGHT) -> None:
        super().__init__(parent, name="latency_chart", what="Latency", empty_title="No device selected",
                         button_prefix="range_", capacity=capacity, clock=clock, theme=theme)
        self._snap: ServiceSnapshot | None = None
        self._fail = Ring(capacity)  # x = wall time of a failed check
        self._anomalies: deque[float] = deque(maxlen=MAX_ANOMALY_MARKERS)
        self._breakers: deque[tuple[float, str, str]] = deque(maxlen=MAX_BREAKER_MARKERS)  # wall, text, role
        self._y_top = 1.0

        pi = self._plot.getPlotItem()
        pi.setLabel("left", "ms")
        self._fail_scatter = pg.ScatterPlotItem(symbol=_TICK, size=18, pxMode=True, name="failed")
        self._anomaly_scatter = pg.ScatterPlotItem(symbol="t", size=13, pxMode=True, name="anomaly")
        self._slow_line = pg.InfiniteLine(angle=0, movable=False, label="slow",
                                          labelOpts={"position": 0.01, "anchors": [(0, 1), (0, 1)]})
        self._timeout_line = pg.InfiniteLine(angle=0, movable=False, label="timeout",
                                             labelOpts={"position": 0.01, "anchors": [(0, 1), (0, 1)]})
        for item in (self._slow_line, self._timeout_line):
            item.setZValue(-5)
            item.setVisible(False)
            pi.addItem(item, ignoreBounds=True)
        pi.addItem(self._curve)
        pi.addItem(self._fail_scatter, ignoreBounds=True)
        pi.addItem(self._anomaly_scatter, ignoreBounds=True)
        self._breaker_lines: list[pg.InfiniteLine] = []  # pooled, at most MAX_BREAKER_MARKERS

        # Thresholds above the y range: a note at the top-left edge instead of a squashed line.
        self._above_note = pg.TextItem("", anchor=(0, 0))
        self._above_note.setZValue(5)
        self._above_note.setVisible(False)
        pi.addItem(self._above_note, ignoreBounds=True)
        self._above: list[tuple[str, str]] = []  # (text, palette role)

        self.set_theme(theme)
        self.redraw_now()

    # ---- public contract ------------------------------------------------------------------------

    def set_service(self, snap: ServiceSnapshot | None) -> None:
        """Show `snap`'s service: clears data and markers, title and threshold lines from the snapshot."""
        self._snap = snap
        self._ring.clear()
        self._fail.clear()
        self._anomalies.clear()
        self._breakers.clear()
        if snap is None:
            self._title.setText("No device selected")
            self._slow_line.setVisible(False)
            self._timeout_line.setVisible(False)
        else:
            self._title.setText(snap.name)
            # Visible first: a hidden InfLineLabel ignores format changes.
            self._slow_line.setVisible(True)
            self._timeout_line.setVisible(True)
            self._slow_line.setValue(snap.slow_threshold_ms)
            self._slow_line.label.setFormat(f"slow {format_threshold(snap.slow_threshold_ms)}")
            self._timeout_line.setValue(snap.timeout_ms)
            self._timeout_line.label.setFormat(f"timeout {format_threshold(snap.timeout_ms)}")
        self._plot.setAccessibleDescription(self._title.text())
        self._dirty = True

    def set_history(self, points: list[tuple[float, float | None]]) -> None:
        """Replace the data with `points` ((wall s, ms or None = failed), oldest first)."""
        if points:
            arr = np.array([(w, np.nan if ms is None else ms) for w, ms in points], dtype=np.float64)
            xs, ys = arr[:, 0], arr[:, 1]
        else:
            xs = ys = np.empty(0)
        fx = xs[np.isnan(ys)]
        xs, ys = _peak_reduce(xs, ys, self._ring.capacity)
        self._ring.replace(xs, ys)
        self._fail.replace(fx, np.zeros_like(fx))
        self._dirty = True

    def add_point(self, wall: float, ms: float | None) -> None:
        """Append a live point; no redraw here (the timer draws at most 10 times a second)."""
        y = np.nan if ms is None else float(ms)
        spacing = self._bucket_s()
        last = self._ring.last_index()
        merged = False
        if spacing > 0 and last is not None and wall - self._ring.x[last] < spacing:
            prev = self._ring.y[last]
            # Merge into the current bucket when it is of the same kind (peak for values).
            if np.isnan(prev) and np.isnan(y):
                merged = True
            elif not np.isnan(prev) and not np.isnan(y):
                self._ring.y[last] = max(prev, y)
                merged = True
        if not merged:
            self._ring.append(wall, y)
        if ms is None:
            lf = self._fail.last_index()
            if not (spacing > 0 and lf is not None and wall - self._fail.x[lf] < spacing):
                self._fail.append(wall, 0.0)
        self._dirty = True

    def add_marker(self, wall: float, kind: str, text: str, quiet: bool = False) -> None:
        """kind "anomaly": amber triangle at the top; kind "breaker": vertical line labelled `text`,
        coloured by the state it names, or grey when `quiet` (a move behind a down parent)."""
        if kind == "anomaly":
            self._anomalies.append(wall)
        elif kind == "breaker":
            self._breakers.append((wall, text, "normal" if quiet else _breaker_role(text)))
        else:
            raise ValueError(f"unknown marker kind {kind!r} (expected 'anomaly' or 'breaker')")
        self._dirty = True

    def breaker_markers(self) -> list[tuple[float, str, str]]:
        """(wall, text, palette role) of the breaker lines, oldest first."""
        return list(self._breakers)

    def y_range(self) -> tuple[float, float]:
        """The latency axis as drawn (ms)."""
        return 0.0, self._y_top

    def above_range_text(self) -> str:
        """The note for thresholds above the y range ("slow 300 ms ↑ · timeout 2 s ↑"), or ""."""
        return " · ".join(f"{text} ↑" for text, _ in self._above)

    def set_theme(self, theme: palette.Theme) -> None:
        super().set_theme(theme)
        t = theme
        self._fail_scatter.setPen(pg.mkPen(None))
        self._fail_scatter.setBrush(pg.mkBrush(t.critical))
        self._anomaly_scatter.setPen(pg.mkPen(None))
        self._anomaly_scatter.setBrush(pg.mkBrush(t.warning))
        for line, col in ((self._slow_line, t.warning), (self._timeout_line, t.critical)):
            line.setPen(pg.mkPen(col, width=1, style=Qt.PenStyle.DashLine))
            line.label.setColor(QColor(col))
        above, self._above = self._above, []
        self._set_above(above)

    def last_redraw_duration_ms(self) -> float:
        return self.last_redraw_ms

    # ---- data views for tests and the detail panel ----------------------------------------------

    def failure_x(self) -> np.ndarray:
        return np.array([p.pos().x() for p in self._fail_scatter.points()])

    # ---- internals ----------------------------------------------------------------------------------

    def _bucket_s(self) -> float:
        # Short ranges keep raw points; a day is kept as per-minute peaks (1,440 points).
        return 0.0 if self._range_s <= 3600 else self._range_s / 1440.0

    def _redraw(self, now: float) -> None:
        xs, ys = self._ring.ordered()
        lo = now - self._range_s
        visible = ys[(xs >= lo) & np.isfinite(ys)]
        data_top = float(visible.max()) if visible.size else 0.0
        # Fit the data, not the timeout: healthy devices answer in a few ms against thresholds of
        # hundreds, and a 0..timeout scale drew their line flat on the floor.
        thresholds: dict[float, tuple[str, str]] = {}
        if self._snap is not None:
            thresholds[self._snap.timeout_ms] = (f"timeout {format_threshold(self._snap.timeout_ms)}", "critical")
            thresholds[self._snap.slow_threshold_ms] = (f"slow {format_threshold(self._snap.slow_threshold_ms)}",
                                                        "warning")
        top, above = y_range_top(data_top, tuple(thresholds))
        self._set_above([thresholds[t] for t in above])
        self._y_top = top
        self._curve.setData(xs, ys, connect="finite")
        fx, _ = self._fail.ordered()
        self._fail_scatter.setData(x=fx, y=np.zeros_like(fx))
        ax = np.fromiter(self._anomalies, dtype=np.float64, count=len(self._anomalies))
        self._anomaly_scatter.setData(x=ax, y=np.full_like(ax, top * 0.955))
        self._sync_breaker_lines()
        self._above_note.setPos(lo, top)
        vb = self._plot.getPlotItem().getViewBox()
        vb.setRange(xRange=(lo, now), yRange=(0.0, top), padding=0, update=True)

    def _set_above(self, above: list[tuple[str, str]]) -> None:
        if above == self._above:
            return
        self._above = above
        html = " · ".join(f'<span style="color:{palette.colour(self._theme, role)}">{text} ↑</span>'
                          for text, role in above)
        self._above_note.setHtml(f'<span style="font-size:9pt">{html}</span>' if html else "")
        self._above_note.setVisible(bool(above))

    def _sync_breaker_lines(self) -> None:
        pi = self._plot.getPlotItem()
        while len(self._breaker_lines) < len(self._breakers):
            line = pg.InfiniteLine(angle=90, movable=False, label="",
                                   labelOpts={"position": 0.84, "anchors": [(0, 0.5), (0, 0.5)]})
            line.setZValue(-4)
            pi.addItem(line, ignoreBounds=True)
            self._breaker_lines.append(line)
        for i, line in enumerate(self._breaker_lines):
            if i >= len(self._breakers):
                line.setVisible(False)
                continue
            wall, text, role = self._breakers[i]
            col = palette.colour(self._theme, role)
            line.setPen(pg.mkPen(col, width=1))
            line.setValue(wall)
            line.label.setFormat(" " + text)
            line.label.setColor(QColor(col))
            line.setVisible(True)


def _breaker_role(text: str) -> str:
    word = text.upper()
    if word.startswith("FORCED"):
        return "suppressed"
    if word.startswith("HALF"):
        return "warning"
    if word.startswith("OPEN"):
        return "critical"
    return "normal"

