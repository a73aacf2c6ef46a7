"""Wall display mode: the whole fleet as tiles, read from across a control room.

Report by exception: healthy tiles are grey and quiet, only abnormal tiles carry colour (a solid fill
in the role's hue), and every state is also a word and a shape. Tiles are grouped by rack in a stable,
alphabetical order so an operator learns where things are; the layout (type size, columns, pages) is
computed only when the widget is resized or the set of services changes, never when states change.
Everything is painted in one `paintEvent`, so a page of hundreds of tiles repaints cheaply.
When the racks do not fit at a readable size (about 28 px on a 1080p screen) pages cycle on a timer
with a visible "page n / m" marker; the summary strip always counts the whole fleet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from PySide6.QtCore import QRect, QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPaintEvent, QPen, QResizeEvent
from PySide6.QtWidgets import QWidget

from core.events import BreakerState
from core.snapshot import ServiceSnapshot
from gui import presentation
from gui import palette
from gui.shapes import paint_shape

READABLE_PX_AT_1080 = 28  # a device name must stay at least this tall on a 1080-line wall screen
DEFAULT_PAGE_INTERVAL_S = 10.0

# The widest state/breaker words a tile must hold; fixed so the layout never depends on states.
_WIDEST_WORDS = ("RECOVERING 9/9", "HALF-OPEN 9/9", "FORCED CLOSED", "NO HEARTBEAT", "MAINTENANCE",
                 "OPEN 999s")

# Summary strip: (key, word, role, shape) in reading order, most severe first.
SUMMARY_KEYS: tuple[tuple[str, str, str, str], ...] = (
    ("unhealthy", "UNHEALTHY", "critical", "triangle"),
    ("degraded", "DEGRADED", "warning", "triangle"),
    ("open", "BREAKER OPEN", "critical", "circle"),
    ("suppressed", "FORCED / MAINT.", "suppressed", "lock"),
    ("recovering", "RECOVERING", "info", "diamond"),
    ("unknown", "UNKNOWN", "normal", "ring"),
    ("healthy", "HEALTHY", "normal", "circle"),
)


@dataclass(frozen=True, slots=True)
class WallLayoutInfo:
    font_px: int  # device-name type size
    tiles_per_page: int  # the most tiles any page holds
    pages: int
    page: int  # the page shown, 1-based
    columns: int
    tile_width: int
    tile_height: int


@dataclass(frozen=True, slots=True)
class _Header:
    rect: QRect
    group: str
    continued: bool


@dataclass(frozen=True, slots=True)
class _Tile:
    rect: QRect
    service_id: str


def _natural_key(text: str) -> list[object]:
    """"pump-2" before "pump-10": digit runs compare as numbers."""
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", text)]


def _luminance(c: QColor) -> float:
    def ch(v: float) -> float:
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
    return 0.2126 * ch(c.redF()) + 0.7152 * ch(c.greenF()) + 0.0722 * ch(c.blueF())


def _contrast(a: QColor, b: QColor) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _mix(a: QColor, b: QColor, share: float) -> QColor:
    return QColor(round(a.red() + (b.red() - a.red()) * share),
                  round(a.green() + (b.green() - a.green()) * share),
                  round(a.blue() + (b.blue() - a.blue()) * share))


def readable_on(fill: QColor, preferred: QColor) -> QColor:
    """`preferred` text colour on `fill`, unless near-black or white reads clearly better (amber)."""
    best = preferred
    for alt in (QColor("#111111"), QColor("#ffffff")):
        if _contrast(alt, fill) > _contrast(best, fill) + 1.0:
            best = alt
    return best


def tile_indicators(snap: ServiceSnapshot) -> tuple[palette.Indicator, palette.Indicator | None, str]:
    """(status indicator, breaker indicator or None when closed, the tile's role: the more severe)."""
    st = presentation.status_indicator(snap)
    br = None if snap.breaker.state is BreakerState.CLOSED else presentation.breaker_indicator(snap)
    role = st.role
    if br is not None and palette.STATUS_ORDER[br.role] < palette.STATUS_ORDER[role]:
        role = br.role
    return st, br, role


def summary_category(snap: ServiceSnapshot) -> set[str]:
    """The summary keys one service counts under: its one category (gui/presentation.py), plus "open"
    for a breaker that is open or half-open."""
    cats = {str(presentation.category(snap))}
    if snap.breaker.state in (BreakerState.OPEN, BreakerState.HALF_OPEN):
        cats.add("open")
    return cats


format_age = presentation.format_duration


class WallView(QWidget):
    """Fleet tiles grouped by rack, a summary strip and page cycling; no controls.

    Attributes:
        page_interval_s: seconds between automatic page turns (0 disables the timer; `next_page()`
            still works, which is what tests use).
    """

    def __init__(self, parent: QWidget | None = None, *, theme: palette.Theme = palette.DARK,
                 page_interval_s: float = DEFAULT_PAGE_INTERVAL_S) -> None:
        super().__init__(parent)
        self.setObjectName("wall_view")
        self.setAccessibleName("Wall view")
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, True)
        self._theme = theme
        self._snaps: dict[str, ServiceSnapshot] = {}
        self._set_key: tuple[tuple[str, str, str], ...] = ()
        self._counts: dict[str, int] = {k: 0 for k, *_ in SUMMARY_KEYS}
        self._group_all_critical: dict[str, bool] = {}
        self._alert_age: float | None = None
        self._layout_dirty = True
        self._pages: list[list[_Header | _Tile]] = [[]]
        self._page = 0
        self._info = WallLayoutInfo(0, 0, 1, 1, 0, 0, 0)
        self._fonts: dict[str, QFont] = {}
        self._geo: dict[str, int] = {}
        self._group_sizes: dict[str, int] = {}
        self._layout_size = QSize()
        self.page_interval_s = page_interval_s
        self._timer = QTimer(self)
        self._timer.setObjectName("wall_page_timer")
        self._timer.timeout.connect(self.next_page)

    # ---- public contract ------------------------------------------------------------------------

    def update_snapshots(self, snaps: Mapping[str, ServiceSnapshot]) -> None:
        self._snaps = dict(snaps)
        key = tuple(sorted((s.id, s.name, s.group) for s in self._snaps.values()))
        if key != self._set_key:
            self._set_key = key
            self._layout_dirty = True
        counts = {k: 0 for k, *_ in SUMMARY_KEYS}
        crit: dict[str, bool] = {}
        for s in self._snaps.values():
            for c in summary_category(s):
                counts[c] += 1
            crit[s.group] = crit.get(s.group, True) and tile_indicators(s)[2] == "critical"
        self._counts = counts
        self._group_all_critical = crit
        self.setAccessibleDescription(self.summary_text())
        self.update()

    def set_alert_age(self, oldest_unacked_age_s: float | None) -> None:
        self._alert_age = oldest_unacked_age_s
        self.setAccessibleDescription(self.summary_text())
        self.update()

    def set_theme(self, theme: palette.Theme) -> None:
        self._theme = theme
        self.update()

    def next_page(self) -> None:
        self._ensure_layout()
        self._page = (self._page + 1) % len(self._pages)
        self._refresh_info()
        self.update()

    def layout_info(self) -> WallLayoutInfo:
        self._ensure_layout()
        return self._info

    def summary_counts(self) -> dict[str, int]:
        return dict(self._counts)

    def summary_text(self) -> str:
        parts = [f"{self._counts[k]} {word.lower()}" for k, word, *_ in SUMMARY_KEYS
                 if self._counts[k] or k == "healthy"]
        if self._alert_age is not None:
            parts.append(f"oldest unacknowledged alarm {format_age(self._alert_age)}")
        return " · ".join(parts)

    def page_marker_text(self) -> str:
        self._ensure_layout()
        return f"page {self._page + 1} / {len(self._pages)}" if len(self._pages) > 1 else ""

    def tile_rect(self, service_id: str) -> QRect | None:
        """Where `service_id`'s tile is on the page shown (None when on another page)."""
        self._ensure_layout()
        for item in self._pages[self._page]:
            if isinstance(item, _Tile) and item.service_id == service_id:
                return QRect(item.rect)
        return None

    def groups_in_order(self) -> list[str]:
        """Group names in display order (the order pages and headers follow)."""
        return [g for g, _ in self._ordered_groups()]

    # ---- layout ---------------------------------------------------------------------------------

    def resizeEvent(self, event: QResizeEvent) -> None:
        # grab() of a hidden widget sends a synthetic resize every time: compare the size we laid out.
        if event.size() != self._layout_size:
            self._layout_dirty = True
        super().resizeEvent(event)

    def _ordered_groups(self) -> list[tuple[str, list[str]]]:
        groups: dict[str, list[ServiceSnapshot]] = {}
        for s in self._snaps.values():
            groups.setdefault(s.group or "(no rack)", []).append(s)
        return [(g, [s.id for s in sorted(members, key=lambda s: (_natural_key(s.name), s.id))])
                for g, members in sorted(groups.items(), key=lambda kv: _natural_key(kv[0]))]

    def _ensure_layout(self) -> None:
        if self._layout_dirty or self.size() != self._layout_size:
            self._compute_layout()

    def _compute_layout(self) -> None:
        self._layout_dirty = False
        self._layout_size = self.size()
        w, h = max(1, self.width()), max(1, self.height())
        margin = max(6, round(h * 0.012))
        strip_h = max(44, round(h * 0.09))
        area = QRect(margin, strip_h + margin, w - 2 * margin, h - strip_h - 2 * margin)
        groups = self._ordered_groups()
        self._group_sizes = {g: len(ids) for g, ids in groups}
        min_px = max(12, round(READABLE_PX_AT_1080 * h / 1080))
        max_px = max(min_px, round(h * 0.085))

        probe = QFont()
        probe.setPixelSize(100)
        probe.setBold(True)
        fm = QFontMetricsF(probe)
        names = [self._snaps[i].name for _, ids in groups for i in ids]
        name_w100 = max((fm.horizontalAdvance(n) for n in names), default=fm.horizontalAdvance("device"))
        word_w100 = max(fm.horizontalAdvance(wd) for wd in _WIDEST_WORDS)

        chosen = min_px
        for px in range(max_px, min_px - 1, -1):
            geo = self._geometry(px, name_w100, word_w100, area.width())
            if self._total_height(groups, geo) <= area.height():
                chosen = px
                break
        geo = self._geometry(chosen, name_w100, word_w100, area.width())
        self._geo = geo
        self._fonts = self._make_fonts(geo)
        self._pages = self._paginate(groups, geo, area)
        self._page = min(self._page, len(self._pages) - 1)
        self._geo["strip_h"] = strip_h
        self._geo["margin"] = margin
        if len(self._pages) > 1 and self.page_interval_s > 0:
            self._timer.start(round(self.page_interval_s * 1000))
        else:
            self._timer.stop()
        self._refresh_info()

    @staticmethod
    def _geometry(px: int, name_w100: float, word_w100: float, avail_w: int) -> dict[str, int]:
        pad = max(4, round(px * 0.22))
        small = max(10, round(px * 0.62))
        small_lh = round(small * 1.2)
        name_lh = round(px * 1.15)
        gap = max(4, round(px * 0.25))
        shape = round(small * 1.0)
        name_w = min(name_w100 * px / 100.0, avail_w / 3)
        word_w = shape + small * 0.4 + word_w100 * small / 100.0
        tile_w = int(pad * 2 + max(name_w, word_w) + 2)
        cols = max(1, (avail_w + gap) // (tile_w + gap))
        tile_w = (avail_w - (cols - 1) * gap) // cols  # stretch to use the row
        tile_h = pad * 2 + name_lh + 2 * small_lh
        header_px = max(11, round(px * 0.72))
        header_h = round(header_px * 1.45)
        return {"px": px, "pad": pad, "small": small, "small_lh": small_lh, "name_lh": name_lh,
                "gap": gap, "shape": shape, "tile_w": tile_w, "tile_h": tile_h, "cols": cols,
                "header_px": header_px, "header_h": header_h}

    @staticmethod
    def _total_height(groups: list[tuple[str, list[str]]], geo: dict[str, int]) -> int:
        total = 0
        for _, ids in groups:
            rows = -(-len(ids) // geo["cols"])
            total += geo["header_h"] + rows * (geo["tile_h"] + geo["gap"])
        return total

    def _paginate(self, groups: list[tuple[str, list[str]]], geo: dict[str, int],
                  area: QRect) -> list[list[_Header | _Tile]]:
        cols, row_h, head_h = geo["cols"], geo["tile_h"] + geo["gap"], geo["header_h"]
        pages: list[list[_Header | _Tile]] = [[]]
        y = area.top()
        bottom = area.top() + area.height()
        for group, ids in groups:
            rows = [ids[i:i + cols] for i in range(0, len(ids), cols)]
            whole = head_h + len(rows) * row_h
            # Start a group on a fresh page if it would fit there whole but not in what is left.
            if pages[-1] and y + whole > bottom and whole <= area.height():
                pages.append([])
                y = area.top()
            continued = False
            r = 0
            while r < len(rows):
                if y + head_h + row_h > bottom and pages[-1]:
                    pages.append([])
                    y = area.top()
                pages[-1].append(_Header(QRect(area.left(), y, area.width(), head_h), group, continued))
                y += head_h
                while r < len(rows) and (y + row_h <= bottom or not continued and y == area.top() + head_h):
                    for c, sid in enumerate(rows[r]):
                        x = area.left() + c * (geo["tile_w"] + geo["gap"])
                        pages[-1].append(_Tile(QRect(x, y, geo["tile_w"], geo["tile_h"]), sid))
                    y += row_h
                    r += 1
                    if y + row_h > bottom:
                        break
                continued = True
        return pages

    def _make_fonts(self, geo: dict[str, int]) -> dict[str, QFont]:
        def font(px: int, bold: bool) -> QFont:
            f = QFont(self.font())
            f.setPixelSize(px)
            f.setBold(bold)
            return f
        return {"name": font(geo["px"], True), "small": font(geo["small"], True),
                "header": font(geo["header_px"], True)}

    def _refresh_info(self) -> None:
        geo = self._geo
        per_page = max((sum(isinstance(i, _Tile) for i in p) for p in self._pages), default=0)
        self._info = WallLayoutInfo(font_px=geo.get("px", 0), tiles_per_page=per_page,
                                    pages=len(self._pages), page=self._page + 1,
                                    columns=geo.get("cols", 0), tile_width=geo.get("tile_w", 0),
                                    tile_height=geo.get("tile_h", 0))

    # ---- painting -------------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        self._ensure_layout()
        t = self._theme
        p = QPainter(self)
        try:
            p.fillRect(self.rect(), QColor(t.window))
            p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            p.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
            self._paint_strip(p)
            clip = event.rect()
            for item in self._pages[self._page]:
                if not item.rect.intersects(clip):
                    continue
                if isinstance(item, _Tile):
                    snap = self._snaps.get(item.service_id)
                    if snap is not None:
                        self._paint_tile(p, item.rect, snap)
                else:
                    self._paint_header(p, item)
        finally:
            p.end()

    def _strip_chips(self) -> list[tuple[str, str, str, str, bool]]:
        """(big text, caption, role, shape, filled) per chip, left to right, then the right side."""
        chips: list[tuple[str, str, str, str, bool]] = []
        for key, word, role, shape in SUMMARY_KEYS:
            n = self._counts[key]
            if n == 0 and key != "healthy":
                continue  # report by exception: a zero count is nothing to report
            chips.append((str(n), word, role, shape, True))
        return chips

    def _paint_strip(self, p: QPainter) -> None:
        """Counts as KPI chips: a big number with its shape over a small word; colour only if > 0."""
        t = self._theme
        strip_h, margin = self._geo["strip_h"], self._geo["margin"]
        strip = QRect(0, 0, self.width(), strip_h)
        p.fillRect(strip, QColor(t.surface))
        p.setPen(QPen(QColor(t.grid), 1))
        p.drawLine(strip.bottomLeft(), strip.bottomRight())
        chips = self._strip_chips()
        right_chips: list[tuple[str, str, str, str, bool]] = []
        if self._alert_age is not None:
            right_chips.append((format_age(self._alert_age), "oldest unacknowledged alarm", "critical",
                                "triangle", True))
        if len(self._pages) > 1:
            on_page = [i.group + (" (cont.)" if i.continued else "")
                       for i in self._pages[self._page] if isinstance(i, _Header)]
            caption = ", ".join(on_page)
            if len(caption) > 32:
                caption = caption[:31] + "…"
            right_chips.append((self.page_marker_text(), caption, "page", "", False))
        chip_h = round(strip_h * 0.86)
        top = (strip_h - chip_h) // 2
        scale = 1.0
        while True:  # the largest type at which the strip fits on one line (never clips/overlaps)
            fonts = self._chip_fonts(chip_h, scale)
            widths = [self._chip_width(fonts, c) for c in chips + right_chips]
            need = sum(widths) + margin * 0.5 * (len(widths) - 1)
            if need <= self.width() - 2 * margin or scale < 0.45:
                break
            scale -= 0.05
        gap = margin * 0.5
        x = float(margin)
        for chip, w in zip(chips, widths):
            self._paint_chip(p, QRectF(x, top, w, chip_h), fonts, chip)
            x += w + gap
        x = float(self.width() - margin)
        for chip, w in zip(reversed(right_chips), reversed(widths[len(chips):])):
            x -= w
            self._paint_chip(p, QRectF(x, top, w, chip_h), fonts, chip)
            x -= gap

    def _chip_fonts(self, chip_h: int, scale: float) -> tuple[QFont, QFont]:
        big = QFont(self.font())
        big.setBold(True)
        big.setPixelSize(max(10, round(chip_h * 0.52 * scale)))
        small = QFont(self.font())
        small.setBold(True)
        small.setPixelSize(max(8, round(chip_h * 0.24 * scale)))
        return big, small

    @staticmethod
    def _chip_width(fonts: tuple[QFont, QFont], chip: tuple[str, str, str, str, bool]) -> float:
        big, small = fonts
        text, caption, _, shape, _ = chip
        pad = small.pixelSize() * 0.8
        shape_w = big.pixelSize() * 0.85 + big.pixelSize() * 0.25 if shape else 0.0
        line1 = shape_w + QFontMetricsF(big).horizontalAdvance(text)
        return pad * 2 + max(line1, QFontMetricsF(small).horizontalAdvance(caption))

    def _paint_chip(self, p: QPainter, rect: QRectF, fonts: tuple[QFont, QFont],
                    chip: tuple[str, str, str, str, bool]) -> None:
        t = self._theme
        big, small = fonts
        text, caption, role, shape, filled = chip
        radius = rect.height() * 0.12
        if role == "page":
            fg = QColor(t.text)
            p.setPen(QPen(fg, 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRoundedRect(rect.adjusted(1, 1, -1, -1), radius, radius)
        elif role != "normal" and filled:
            fill = QColor(palette.colour(t, role))
            fg = readable_on(fill, QColor(t.on_colour))
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(fill)
            p.drawRoundedRect(rect, radius, radius)
        else:
            fg = QColor(t.muted)
        pad = small.pixelSize() * 0.8
        bh = QFontMetricsF(big).height()
        sh = QFontMetricsF(small).height()
        y0 = rect.top() + (rect.height() - bh - sh) / 2
        x = rect.left() + pad
        if shape:
            s = big.pixelSize() * 0.85
            paint_shape(p, QRectF(x, y0 + (bh - s) / 2, s, s), shape, fg)
            x += s + big.pixelSize() * 0.25
        p.setPen(fg)
        p.setFont(big)
        p.drawText(QRectF(x, y0, rect.right() - x, bh),
                   Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
        p.setFont(small)
        p.drawText(QRectF(rect.left() + pad, y0 + bh, rect.width() - pad, sh),
                   Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, caption)

    def _paint_header(self, p: QPainter, item: _Header) -> None:
        t = self._theme
        p.setFont(self._fonts["header"])
        p.setPen(QColor(t.text))
        label = item.group + ("  (continued)" if item.continued else "")
        r = QRectF(item.rect)
        p.drawText(r, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, label)
        fm = QFontMetricsF(self._fonts["header"])
        p.setPen(QColor(t.muted))
        n = self._group_sizes.get(item.group, 0)
        p.drawText(r.adjusted(fm.horizontalAdvance(label + "  "), 0, 0, 0),
                   Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                   f"{n} device" + ("" if n == 1 else "s"))
        label += f"  {n} devices"
        if self._group_all_critical.get(item.group):
            # A whole rack down is one fact, said once at the rack (ISA-18.2 flood handling).
            x = r.left() + fm.horizontalAdvance(label + "    ")
            p.setPen(QColor(t.critical))
            p.drawText(QRectF(x, r.top(), r.width() - x, r.height()),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, "▲ WHOLE RACK UNHEALTHY")

    def _paint_tile(self, p: QPainter, rect: QRect, snap: ServiceSnapshot) -> None:
        t, g = self._theme, self._geo
        st, br, role = tile_indicators(snap)
        r = QRectF(rect)
        radius = max(3.0, g["pad"] * 0.5)
        if role == "normal":
            p.setPen(QPen(QColor(t.grid), 1))
            p.setBrush(QColor(t.surface))
            p.drawRoundedRect(r.adjusted(0.5, 0.5, -0.5, -0.5), radius, radius)
            word_col = QColor(t.muted)
            name_col = _mix(QColor(t.muted), QColor(t.text), 0.35)  # still grey, legible at 5 m
        else:
            fill = QColor(palette.colour(t, role))
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(fill)
            p.drawRoundedRect(r, radius, radius)
            name_col = word_col = readable_on(fill, QColor(t.on_colour))
        pad = g["pad"]
        inner = r.adjusted(pad, pad, -pad, -pad)
        p.setFont(self._fonts["name"])
        p.setPen(name_col)
        fm = QFontMetricsF(self._fonts["name"])
        name = fm.elidedText(snap.name, Qt.TextElideMode.ElideRight, inner.width())
        p.drawText(QRectF(inner.left(), inner.top(), inner.width(), g["name_lh"]),
                   Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, name)
        p.setFont(self._fonts["small"])
        y = inner.top() + g["name_lh"]
        lines = [st] if br is None else [st, br]
        s = g["shape"]
        for ind in lines:
            line = QRectF(inner.left(), y, inner.width(), g["small_lh"])
            paint_shape(p, QRectF(line.left(), line.center().y() - s / 2, s, s), ind.shape, word_col)
            p.setPen(word_col)
            p.drawText(line.adjusted(s + g["small"] * 0.35, 0, 0, 0),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, ind.word)
            y += g["small_lh"]
