"""Indicator shapes: the second code (besides colour) for a state, painted with QPainter.

`palette.Indicator.shape` names one of SHAPES; the table delegate, the wall tiles and the summary strip
all draw it through `paint_shape`, so a state looks the same everywhere and survives a monochrome photo
of the screen. Shapes are drawn centred in the largest square that fits the rect, antialiased, and
leave the painter's state as they found it.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPainterPath, QPen, QPolygonF

SHAPES = ("circle", "ring", "triangle", "lock", "diamond", "square")


def _square(rect: QRectF) -> QRectF:
    side = min(rect.width(), rect.height())
    return QRectF(rect.center().x() - side / 2, rect.center().y() - side / 2, side, side)


def paint_shape(painter: QPainter, rect: QRectF, shape: str, color: QColor) -> None:
    """Paint `shape` (one of SHAPES; unknown names fall back to a square) in `color` inside `rect`.

    Filled shapes mean "a state that is asserted" (circle, triangle, diamond, square, lock body);
    the ring is the only hollow one (closed breaker / unknown), so it stays distinct even in grey.
    """
    sq = _square(QRectF(rect))
    if sq.width() <= 0:
        return
    side = sq.width()
    painter.save()
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        color = QColor(color)
        fill = QBrush(color)
        if shape == "circle":
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(fill)
            painter.drawEllipse(sq.adjusted(side * 0.06, side * 0.06, -side * 0.06, -side * 0.06))
        elif shape == "ring":
            width = max(1.5, side * 0.16)
            painter.setPen(QPen(color, width))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            inset = width / 2 + side * 0.06
            painter.drawEllipse(sq.adjusted(inset, inset, -inset, -inset))
        elif shape == "triangle":
            # Pointing up: the conventional warning/alarm triangle.
            m = side * 0.04
            poly = QPolygonF([QPointF(sq.center().x(), sq.top() + m),
                              QPointF(sq.right() - m, sq.bottom() - side * 0.1),
                              QPointF(sq.left() + m, sq.bottom() - side * 0.1)])
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(fill)
            painter.drawPolygon(poly)
        elif shape == "diamond":
            c = sq.center()
            h = side * 0.47
            poly = QPolygonF([QPointF(c.x(), c.y() - h), QPointF(c.x() + h, c.y()),
                              QPointF(c.x(), c.y() + h), QPointF(c.x() - h, c.y())])
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(fill)
            painter.drawPolygon(poly)
        elif shape == "lock":
            _paint_lock(painter, sq, color)
        else:  # "square" and anything unknown: still visible, never silently nothing
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(fill)
            inset = side * 0.12
            painter.drawRect(sq.adjusted(inset, inset, -inset, -inset))
    finally:
        painter.restore()


def _paint_lock(painter: QPainter, sq: QRectF, color: QColor) -> None:
    """A padlock: solid body with a keyhole cut out, and a shackle arc above it."""
    side = sq.width()
    body = QRectF(sq.left() + side * 0.14, sq.top() + side * 0.44, side * 0.72, side * 0.52)
    shackle_w = max(1.2, side * 0.12)
    shackle = QRectF(sq.left() + side * 0.28 + shackle_w / 2, sq.top() + side * 0.06 + shackle_w / 2,
                     side * 0.44 - shackle_w, side * 0.62)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    pen = QPen(color, shackle_w)
    pen.setCapStyle(Qt.PenCapStyle.FlatCap)
    painter.setPen(pen)
    # Upper half of an ellipse as the shackle; its legs run down into the body.
    path = QPainterPath()
    path.moveTo(shackle.left(), body.top())
    path.lineTo(shackle.left(), shackle.center().y())
    path.arcTo(shackle, 180, -180)
    path.lineTo(shackle.right(), body.top())
    painter.drawPath(path)

    body_path = QPainterPath()
    body_path.addRoundedRect(body, side * 0.06, side * 0.06)
    hole = QPainterPath()
    r = side * 0.07
    hole.addEllipse(QPointF(body.center().x(), body.center().y() - r * 0.4), r, r)
    hole.addRect(QRectF(body.center().x() - r * 0.45, body.center().y(), r * 0.9, body.height() * 0.28))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QBrush(color))
    painter.drawPath(body_path.subtracted(hole.simplified()))
