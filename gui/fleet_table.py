"""The fleet table's view: repaints only the rows a batch of changes touched that are on screen.

QAbstractItemView answers any dataChanged wider than one cell by repainting its whole viewport. The
model reports a changed row as one range over all its columns, so every bridge poll repainted every
visible row although, with checks every second and a poll every 150 ms, about one row in six had
changed: painting was most of the GUI thread's time per poll at 1,000 devices
(bench/gui_poll_cpu.py). This view updates just the band of visible rows each range covers.
"""

from __future__ import annotations

from typing import Sequence

from PySide6.QtCore import QModelIndex, QPersistentModelIndex
from PySide6.QtGui import QAccessible
from PySide6.QtWidgets import QTableView, QWidget

ModelIndex = QModelIndex | QPersistentModelIndex


class FleetTableView(QTableView):
    """QTableView whose dataChanged repaints only the changed rows on screen.

    Attributes:
        repainted_rows: rows asked to repaint since the last reset (tests and benchmarks read it).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.repainted_rows = 0

    def dataChanged(self, topLeft: ModelIndex, bottomRight: ModelIndex, roles: Sequence[int] = ()) -> None:
        if (not topLeft.isValid() or not bottomRight.isValid() or topLeft == bottomRight
                or QAccessible.isActive() or not self.isVisible()):
            # One cell (Qt updates just it), a screen reader (it is told through the base class), or
            # hidden (laid out and painted afresh when shown): the usual way.
            super().dataChanged(topLeft, bottomRight, list(roles))
            return
        viewport = self.viewport()
        first = self.rowAt(0)
        if first < 0:
            return  # no row reaches the top of the viewport: the table is empty
        last = self.rowAt(viewport.height() - 1)
        if last < 0:
            last = self.model().rowCount() - 1  # the rows end above the viewport's bottom
        lo, hi = max(topLeft.row(), first), min(bottomRight.row(), last)
        if lo > hi:
            return  # none of these rows is on screen
        top = self.rowViewportPosition(lo)
        bottom = self.rowViewportPosition(hi) + self.rowHeight(hi)
        left, right = 0, viewport.width()
        if topLeft.column() == bottomRight.column():  # a column refresh (ages): just that column
            left = self.columnViewportPosition(topLeft.column())
            right = left + self.columnWidth(topLeft.column())
        self.repainted_rows += hi - lo + 1
        viewport.update(left, top, right - left, bottom - top)
