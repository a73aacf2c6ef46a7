"""The value chart of one service: what its check read (a register, an OID, days left) over time.

Beside the latency chart and built on the same frame (gui/time_chart.py): one PlotDataItem, a
preallocated numpy ring buffer, `setData` only from one bounded-rate timer, only when something
changed and the chart is visible. Long ranges come from the journal's per-minute rollups (`value_history(...,
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
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from core.snapshot import ServiceSnapshot
from gui import palette, presentation
from gui.time_chart import DEFAULT_CAPACITY, TimeChart

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


class ValueChart(TimeChart):
    """Numeric values of the selected service over 5 min / 1 h / 24 h (objectName "value_chart").

    The frame, range buttons, redraw timer and `range_changed`, `redraw_count`, `last_redraw_ms` are
    gui/time_chart.py's; this class adds the latest value and the reboot lines.
    """

    def __init__(self, parent: QWidget | None = None, *, capacity: int = DEFAULT_CAPACITY,
                 clock: Callable[[], float] = time.time, theme: palette.Theme = palette.LIGHT) -> None:
        super().__init__(parent, name="value_chart", what="Value", empty_title="No value",
                         button_prefix="value_range_", capacity=capacity, clock=clock, theme=theme)
        self._snap: ServiceSnapshot | None = None
        self._last_count = 0  # values merged into the newest point (means on long ranges)
        self._reboots: deque[float] = deque(maxlen=MAX_REBOOT_MARKERS)
        self._y = (0.0, 1.0)
        # Never widen the window's right column for a long name: the title may be cut, not the table.
        self._title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._latest = QLabel("")
        self._latest.setObjectName("value_chart_latest")
        self._header.insertWidget(1, self._latest)
        self._plot.getPlotItem().addItem(self._curve)
        self._reboot_lines: list[pg.InfiniteLine] = []  # pooled, at most MAX_REBOOT_MARKERS
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

    def latest_text(self) -> str:
        return self._latest.text()

    def y_range(self) -> tuple[float, float]:
        return self._y

    def reboot_x(self) -> list[float]:
        return [line.value() for line in self._reboot_lines if line.isVisible()]

    def set_theme(self, theme: palette.Theme) -> None:
        super().set_theme(theme)
        self._latest.setStyleSheet(f"color: {theme.muted};")

    # ---- internals ----------------------------------------------------------------------------------

    def _set_latest(self, snap: ServiceSnapshot | None) -> None:
        text = "" if snap is None else presentation.value_text(snap)
        self._latest.setText(f"now {text}" if text else "")

    def _bucket_s(self) -> float:
        # As the journal's rollups: raw points up to an hour, per-minute means beyond.
        return 0.0 if self._range_s <= 3600 else 60.0

    def _redraw(self, now: float) -> None:
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

