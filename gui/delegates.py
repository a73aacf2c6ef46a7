"""Painting of state lights and latency sparklines in table cells.

Every state is drawn as a shape in its palette role colour (filled circle, ring, triangle, square,
padlock, diamond — `gui.shapes.paint_shape`, shared with the wall) next to, or instead of, its word; the word is always in the cell's tooltip and
accessible text (the model provides those). Healthy is a small grey shape: calm, not green.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette, QPen
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from core.snapshot import ServiceSnapshot
from gui import palette
from gui.shapes import paint_shape
from gui.service_model import CELL_ROLE, INDICATOR_ROLE, SNAPSHOT_ROLE

ModelIndex = QModelIndex | QPersistentModelIndex


_SELECTED = QStyle.StateFlag.State_Selected
_ACTIVE = QStyle.StateFlag.State_Active
_ALIGN_LEFT = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
_TEXT_MARGIN = 4


def _selected(option: QStyleOptionViewItem) -> bool:
    return bool(option.state & _SELECTED)


def _draw_background(painter: QPainter, option: QStyleOptionViewItem, section_start: bool = False) -> None:
    """The selection tint, and a rule above a row that starts a section (grouped by dependency).

    Deliberately not QStyle's CE_ItemViewItem: that path (initStyleOption) asks the model for about
    ten roles per cell and lays the text out again; at 1,000 rows refreshed several times a second it
    was the GUI thread's largest cost (bench/gui_lag.py). Rows have no other per-cell background.
    """
    if option.state & _SELECTED:
        group = QPalette.ColorGroup.Active if option.state & _ACTIVE else QPalette.ColorGroup.Inactive
        painter.fillRect(option.rect, option.palette.brush(group, QPalette.ColorRole.Highlight))
    if section_start:
        painter.save()
        painter.setPen(QPen(option.palette.color(QPalette.ColorRole.Mid), 1))
        painter.drawLine(option.rect.topLeft(), option.rect.topRight())
        painter.restore()


class RowDelegate(QStyledItemDelegate):
    """The default cell delegate: the display text in its role colour, on the selection tint if any.

    A cell keeps its state colour when its row is selected (Qt would paint selected text in the
    palette's HighlightedText and turn a red FAILED black exactly when the technician selects that
    row; the selection tint is neutral, so the colour stays). Painting asks the model for four roles
    only (display, foreground, font, alignment).
    """

    section_rows: frozenset[int] = frozenset()  # view rows that start a section (a rule above)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: ModelIndex) -> None:
        _draw_background(painter, option, index.row() in self.section_rows)
        cell = index.data(CELL_ROLE)
        if isinstance(cell, tuple):
            text, fg, font, align = cell
        else:  # any other model: the standard roles
            text = index.data(Qt.ItemDataRole.DisplayRole)
            fg = index.data(Qt.ItemDataRole.ForegroundRole)
            font = index.data(Qt.ItemDataRole.FontRole)
            align = index.data(Qt.ItemDataRole.TextAlignmentRole)
        if not text:
            return
        if not isinstance(fg, QColor):
            role = QPalette.ColorRole.HighlightedText if option.state & _SELECTED else QPalette.ColorRole.Text
            fg = option.palette.color(role)
        painter.save()
        painter.setPen(fg)
        if isinstance(font, QFont):
            painter.setFont(font)
            metrics = QFontMetrics(font)
        else:
            painter.setFont(option.font)
            metrics = option.fontMetrics
        rect = option.rect.adjusted(_TEXT_MARGIN, 0, -_TEXT_MARGIN, 0)
        elided = metrics.elidedText(str(text), Qt.TextElideMode.ElideRight, rect.width())
        painter.drawText(rect, int(align) if isinstance(align, int) else _ALIGN_LEFT, elided)
        painter.restore()


class IndicatorDelegate(QStyledItemDelegate):
    """Paints INDICATOR_ROLE as a shape, and the cell's display text (the word) next to it if any.

    Attributes:
        theme: palette theme for the shape colours.
    """

    section_rows: frozenset[int] = frozenset()  # view rows that start a section (a rule above)

    def __init__(self, theme: palette.Theme, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.theme = theme

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: ModelIndex) -> None:
        indicator = index.data(INDICATOR_ROLE)
        if not isinstance(indicator, palette.Indicator):
            super().paint(painter, option, index)
            return
        _draw_background(painter, option, index.row() in self.section_rows)
        rect = QRectF(option.rect)
        side = min(rect.height() - 8, 14.0)
        colour = QColor(palette.colour(self.theme, indicator.role))
        text = index.data(Qt.ItemDataRole.DisplayRole)
        if not text:
            shape_rect = QRectF(0, 0, side, side)
            shape_rect.moveCenter(rect.center())
            paint_shape(painter, shape_rect, indicator.shape, colour)
            return
        shape_rect = QRectF(rect.left() + 6, rect.center().y() - side / 2, side, side)
        paint_shape(painter, shape_rect, indicator.shape, colour)
        painter.save()
        painter.setPen(colour if indicator.role != "normal" else QColor(self.theme.muted))
        font = QFont(option.font)
        if indicator.role in ("critical", "suppressed"):
            font.setBold(True)
        painter.setFont(font)
        text_rect = rect.adjusted(side + 12, 0, -4, 0)
        elided = option.fontMetrics.elidedText(str(text), Qt.TextElideMode.ElideRight, int(text_rect.width()))
        painter.drawText(text_rect, int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft), elided)
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: ModelIndex) -> QSize:
        size = super().sizeHint(option, index)
        return QSize(size.width() + 22, max(size.height(), 22))


class SparklineDelegate(QStyledItemDelegate):
    """Paints `latencies_ms` as small bars on a log scale up to the timeout, slow threshold dashed.

    Log scale because healthy devices answer in tens of ms against thresholds in seconds: on a linear
    scale every healthy bar would be a flat line and a doubling would be invisible.

    Bars under the slow threshold are grey; slow ones amber; at/over the timeout red. Stale rows are
    drawn faded (last-known-good).

    Attributes:
        theme: palette theme for the bar colours.
    """

    section_rows: frozenset[int] = frozenset()  # view rows that start a section (a rule above)

    def __init__(self, theme: palette.Theme, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.theme = theme

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: ModelIndex) -> None:
        snap = index.data(SNAPSHOT_ROLE)
        _draw_background(painter, option, index.row() in self.section_rows)
        if not isinstance(snap, ServiceSnapshot):
            return
        rect = QRectF(option.rect).adjusted(4, 4, -4, -4)
        if rect.width() < 8 or rect.height() < 4:
            return
        values = snap.latencies_ms
        ceiling = math.log1p(max(snap.timeout_ms, 1.0))
        theme = self.theme
        painter.save()
        if snap.stale:
            painter.setOpacity(0.45)
        # The slow threshold as a dashed line: the bar's reference.
        slow_y = rect.bottom() - rect.height() * min(1.0, math.log1p(snap.slow_threshold_ms) / ceiling)
        painter.setPen(QPen(QColor(theme.grid), 1, Qt.PenStyle.DashLine))
        painter.drawLine(QPointF(rect.left(), slow_y), QPointF(rect.right(), slow_y))
        if values:
            n = len(values)
            slot = rect.width() / max(n, 12)
            bar_w = max(1.0, slot - 1.0)
            x = rect.right() - slot * n
            painter.setPen(Qt.PenStyle.NoPen)
            for v in values:
                share = min(1.0, math.log1p(max(v, 0.0)) / ceiling)
                h = max(1.5, rect.height() * share)
                if v >= snap.timeout_ms:
                    c = theme.critical
                elif v >= snap.slow_threshold_ms:
                    c = theme.warning
                else:
                    c = theme.muted
                painter.setBrush(QColor(c))
                painter.drawRect(QRectF(x, rect.bottom() - h, bar_w, h))
                x += slot
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: ModelIndex) -> QSize:
        return QSize(90, 22)


class ValueDelegate(QStyledItemDelegate):
    """The Value cell: the last value read, right-aligned, with a small line of the recent numeric
    values (`ServiceSnapshot.values`) to its left, scaled to their own min–max.

    Its own scale, not a threshold's: a value's bounds are the check's business (out of range shows
    as the device's state), and a counter or a temperature is read by its shape: flat, rising,
    a step. A grey line only; colour stays with the state columns. Stale rows are drawn faded.

    Attributes:
        theme: palette theme for the line colour.
    """

    section_rows: frozenset[int] = frozenset()  # view rows that start a section (a rule above)

    SPARK_MIN_WIDTH = 24  # narrower than this and only the number is drawn

    def __init__(self, theme: palette.Theme, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.theme = theme

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: ModelIndex) -> None:
        _draw_background(painter, option, index.row() in self.section_rows)
        snap = index.data(SNAPSHOT_ROLE)
        cell = index.data(CELL_ROLE)
        if not isinstance(snap, ServiceSnapshot) or not isinstance(cell, tuple):
            return
        text, fg, _font, _align = cell
        rect = QRectF(option.rect).adjusted(_TEXT_MARGIN, 3, -_TEXT_MARGIN, -3)
        painter.save()
        if snap.stale:
            painter.setOpacity(0.45)
        text_w = 0.0
        if text:
            metrics = option.fontMetrics
            elided = metrics.elidedText(str(text), Qt.TextElideMode.ElideLeft, int(rect.width()))
            text_w = float(metrics.horizontalAdvance(elided))
            colour = fg if isinstance(fg, QColor) else option.palette.color(QPalette.ColorRole.Text)
            painter.setPen(colour)
            painter.setFont(option.font)
            painter.drawText(rect, int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), elided)
        spark = QRectF(rect.left(), rect.top() + 2, rect.width() - text_w - 6, rect.height() - 4)
        values = snap.values
        if len(values) >= 2 and spark.width() >= self.SPARK_MIN_WIDTH:
            lo, hi = min(values), max(values)
            span = hi - lo
            step = spark.width() / (len(values) - 1)
            points = []
            for i, v in enumerate(values):
                # A constant value draws a flat line through the middle, not along the floor.
                share = 0.5 if span <= 0 else (v - lo) / span
                points.append(QPointF(spark.left() + i * step, spark.bottom() - share * spark.height()))
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            painter.setPen(QPen(QColor(self.theme.muted), 1.2))
            painter.drawPolyline(points)
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: ModelIndex) -> QSize:
        return QSize(110, 22)
