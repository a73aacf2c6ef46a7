"""gui/shapes.paint_shape: every shape paints visible pixels of the requested colour, inside the rect."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import pytest
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QImage, QPainter

from gui.shapes import SHAPES, paint_shape

RED = QColor("#c8102e")


def _paint(shape: str, rect: QRectF, color: QColor = RED, size: int = 64) -> QImage:
    img = QImage(size, size, QImage.Format.Format_ARGB32)
    img.fill(QColor("#ffffff"))
    p = QPainter(img)
    paint_shape(p, rect, shape, color)
    p.end()
    return img


def _exact_pixels(img: QImage, color: QColor) -> list[tuple[int, int]]:
    return [(x, y) for y in range(img.height()) for x in range(img.width())
            if img.pixelColor(x, y).rgb() == color.rgb()]


@pytest.mark.parametrize("shape", SHAPES)
def test_each_shape_paints_its_colour_inside_the_rect(qapp, shape):
    rect = QRectF(8, 8, 40, 40)
    img = _paint(shape, rect)
    hits = _exact_pixels(img, RED)
    assert len(hits) > 40, f"{shape}: only {len(hits)} pixels in the colour"
    assert all(7 <= x <= 48 and 7 <= y <= 48 for x, y in hits), f"{shape} paints outside its rect"


def test_shapes_are_distinguishable(qapp):
    """Colour is only half the code: each shape has its own footprint."""
    footprints = {s: frozenset(_exact_pixels(_paint(s, QRectF(0, 0, 64, 64)), RED)) for s in SHAPES}
    assert len(set(footprints.values())) == len(SHAPES)


def test_ring_is_hollow_and_circle_is_filled(qapp):
    centre = (32, 32)
    ring = _paint("ring", QRectF(0, 0, 64, 64))
    circle = _paint("circle", QRectF(0, 0, 64, 64))
    assert ring.pixelColor(*centre).rgb() == QColor("#ffffff").rgb()
    assert circle.pixelColor(*centre).rgb() == RED.rgb()


def test_shape_is_centred_square_in_a_wide_rect(qapp):
    img = _paint("square", QRectF(0, 16, 64, 32))
    xs = [x for x, _ in _exact_pixels(img, RED)]
    assert min(xs) >= 16 and max(xs) <= 48  # a 32-px square centred in 64 px


def test_painter_state_is_restored(qapp):
    img = QImage(16, 16, QImage.Format.Format_ARGB32)
    p = QPainter(img)
    before = (p.pen().color().rgb(), p.brush().style(), p.renderHints())
    paint_shape(p, QRectF(0, 0, 16, 16), "lock", RED)
    after = (p.pen().color().rgb(), p.brush().style(), p.renderHints())
    p.end()
    assert before == after


def test_empty_rect_paints_nothing(qapp):
    img = _paint("circle", QRectF(10, 10, 0, 20))
    assert not _exact_pixels(img, RED)
