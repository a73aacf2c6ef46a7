"""Reports as PDF: the report's HTML (core/report_render.py) printed by Qt's rich-text engine.

Qt's QTextDocument does not draw inline SVG, so the charts are rasterised here from the same SVG
the HTML page embeds (QSvgRenderer, at print resolution) and handed to the document as images.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QMarginsF, QRectF, QSizeF, QUrl
from PySide6.QtGui import QGuiApplication, QImage, QPageLayout, QPageSize, QPainter, QPdfWriter, QTextDocument
from PySide6.QtSvg import QSvgRenderer

from core.report import Report
from core.report_render import chart_svgs, render_html

_DPI = 300
# Charts are drawn at this multiple of their SVG size, so they stay sharp in print.
_CHART_SCALE = 3
_LAYOUT_WIDTH = 1000.0


def _svg_image(svg: str) -> QImage:
    renderer = QSvgRenderer(QByteArray(svg.encode("utf-8")))
    size = renderer.defaultSize()
    image = QImage(max(1, size.width() * _CHART_SCALE), max(1, size.height() * _CHART_SCALE),
                   QImage.Format.Format_ARGB32)
    image.fill(0xFFFFFFFF)
    painter = QPainter(image)
    renderer.render(painter, QRectF(0, 0, image.width(), image.height()))
    painter.end()
    return image  # the HTML gives its printed size (width/height), this is only its resolution


def report_document(report: Report, title: str = "Faultwatch report") -> QTextDocument:
    """The report as a QTextDocument, charts included (for printing or a preview)."""
    doc = QTextDocument()
    for name, svg in chart_svgs(report).items():
        doc.addResource(QTextDocument.ResourceType.ImageResource, QUrl(name), _svg_image(svg))
    doc.setHtml(render_html(report, inline_svg=False, title=title))
    return doc


def write_pdf(report: Report, path: Path, title: str = "Faultwatch report") -> None:
    """Write the report as an A4 landscape PDF at `path` (needs a QGuiApplication; made if missing)."""
    app = QGuiApplication.instance()
    if app is None:
        # Offscreen: a command-line run may have no display at all, and needs none to print.
        import os
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        app = QGuiApplication(["faultwatch-report"])
    writer = QPdfWriter(str(path))
    writer.setResolution(_DPI)
    writer.setTitle(title)
    writer.setCreator("Faultwatch")
    writer.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Landscape,
                                     QMarginsF(12, 12, 12, 12), QPageLayout.Unit.Millimeter))
    doc = report_document(report, title)
    # Laid out on a page _LAYOUT_WIDTH wide, then scaled to the paper (QTextDocument.print scales a
    # paginated document to the printer's page): room for the device table's columns on A4.
    rect = writer.pageLayout().paintRectPoints()
    doc.setPageSize(QSizeF(_LAYOUT_WIDTH, _LAYOUT_WIDTH * rect.height() / rect.width()))
    doc.print_(writer)
    del app
