"""Wall display mode: the whole fleet at once, read from across a control room; no alarm is ever paged away.

Report by exception: healthy devices are grey and quiet, only abnormal ones carry colour (a solid fill
in the role's hue), and every state is also a word and a shape. Two layouts, chosen by size alone:

* **tiles** — when every device fits as a tile at a readable size (about 28 px on a 1080p screen):
  one tile per device, grouped by rack in a stable, natural order.
* **overview** — when it does not: every device as one small cell of a map (grouped by rack, coloured
  and shaped by state, so a red triangle is visible among two thousand grey squares), and the devices
  in trouble (failed, failing, degraded, open, recovering) as large tiles above it with their state,
  breaker and recovery. Nothing pages: an alarm is on screen the moment it exists.

The layout (type size, map cells, the trouble area) is computed only when the widget is resized or the
set of services changes; state changes only re-fill the trouble tiles. Everything is painted in one
`paintEvent`.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Callable, Mapping

from PySide6.QtCore import QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPaintEvent, QPen, QResizeEvent
from PySide6.QtWidgets import QWidget

from core.events import BreakerState
from core.snapshot import ServiceSnapshot
from gui import presentation
from gui import palette
from gui.service_model import recovery_text
from gui.shapes import paint_shape

READABLE_PX_AT_1080 = 28  # a device name must stay at least this tall on a 1080-line wall screen
DEFAULT_PAGE_INTERVAL_S = 10.0  # kept for callers; nothing pages any more
MAP_SHARE = 0.6  # the map may take at most this share of the height; trouble tiles get the rest
MIN_CELL_PX = 5
TROUBLE_ROLES = ("critical", "warning", "info")  # suppressed (forced, maintenance) is deliberate, not trouble

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
    ("blocked", "BLOCKED", "normal", "square"),
    ("unknown", "UNKNOWN", "normal", "ring"),
    ("healthy", "HEALTHY", "normal", "circle"),
)


@dataclass(frozen=True, slots=True)
class WallLayoutInfo:
    font_px: int  # device-name type size (of the trouble tiles in overview mode)
    tiles_per_page: int  # tiles on screen
    pages: int  # always 1: nothing pages
    page: int
    columns: int
    tile_width: int
    tile_height: int
    mode: str = "tiles"  # tiles | overview
    cell_px: int = 0  # overview: side of one map cell
    trouble_total: int = 0  # overview: devices in trouble
    trouble_shown: int = 0  # overview: of those, shown as large tiles (the rest: "+n more", all in the map)


@dataclass(frozen=True, slots=True)
class _Header:
    rect: QRect
    group: str
    continued: bool


@dataclass(frozen=True, slots=True)
class _Tile:
    rect: QRect
    service_id: str


@dataclass(frozen=True, slots=True)
class _RackBlock:
    """A rack in the overview map: its label and where its cells start."""

    group: str
    label: QRect
    origin_x: int
    origin_y: int
    columns: int
    ids: tuple[str, ...]


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
    for a breaker that is open or half-open (not behind a down parent: that one is the parent's alarm)."""
    cats = {str(presentation.category(snap))}
    if snap.breaker.state in (BreakerState.OPEN, BreakerState.HALF_OPEN) and not snap.blocked_by:
        cats.add("open")
    return cats


format_age = presentation.format_duration


class WallView(QWidget):
    """Fleet tiles, or (when they do not fit) a map of every device plus large tiles for trouble.

    Attributes:
        now: the wall clock used for recovery countdowns (replaceable in tests).
    """

    def __init__(self, parent: QWidget | None = None, *, theme: palette.Theme = palette.DARK,
                 page_interval_s: float = DEFAULT_PAGE_INTERVAL_S) -> None:
        super().__init__(parent)
        self.setObjectName("wall_view")
        self.setAccessibleName("Wall view")
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, True)
        self._theme = theme
        self._snaps: dict[str, ServiceSnapshot] = {}
        # Per service, what it contributes (kept so a change can take the old contribution out).
        self._derived: dict[str, tuple[ServiceSnapshot, str]] = {}
        self._tally = presentation.Tally(lambda s: sorted(summary_category(s)))
        self._counts_set = False
        self._group_n: dict[str, int] = {}
        self._group_crit: dict[str, int] = {}
        self._trouble: dict[str, tuple[int, list[object], str]] = {}
        self._counts: dict[str, int] = {k: 0 for k, *_ in SUMMARY_KEYS}
        self._group_all_critical: dict[str, bool] = {}
        self._alert_age: float | None = None
        self._layout_dirty = True
        self._mode = "tiles"
        self._items: list[_Header | _Tile] = []
        self._info = WallLayoutInfo(0, 0, 1, 1, 0, 0, 0)
        self._fonts: dict[str, QFont] = {}
        self._geo: dict[str, int] = {}
        self._group_sizes: dict[str, int] = {}
        self._layout_size = QSize()
        # overview mode
        self._blocks: list[_RackBlock] = []
        self._cells: dict[str, QRect] = {}
        self._trouble_area = QRect()
        self._trouble_ids: tuple[str, ...] = ()
        self._trouble_tiles: list[_Tile] = []
        self._trouble_more = 0
        self._more_rect = QRect()
        self._trouble_dirty = True
        self._abnormal_cells: dict[str, tuple[str, palette.Indicator]] = {}
        # Quiet but not plain healthy (blocked behind a down parent, unknown): a grey shape on the
        # grey cell, so the devices behind a dead switch read as "held", not as fine, from the room.
        self._marked_cells: dict[str, palette.Indicator] = {}
        self._blocked_behind: dict[str, int] = {}  # down parent id -> devices it blocks (its tile says so)
        self._rack_critical: dict[str, int] = {}
        self.page_interval_s = page_interval_s
        self.now: Callable[[], float] = time.time

    # ---- public contract ------------------------------------------------------------------------

    def update_snapshots(self, snaps: Mapping[str, ServiceSnapshot]) -> None:
        # Only the services that changed since the last call are looked at (a control-room wall of
        # five sites is 5,000 services, a quarter of which change every poll); each one's previous
        # contribution is taken out and its new one put in.
        changed, removed = presentation.identity_diff(self._snaps, snaps)
        self._snaps = dict(snaps)
        if not changed and not removed:
            return
        trouble_moved = False
        for sid in removed:
            trouble_moved |= self._forget(sid)
            self._layout_dirty = True
        for sid, s in changed.items():
            prev = self._derived.get(sid)
            if prev is None:
                self._layout_dirty = True
            else:
                if prev[0].name != s.name or prev[0].group != s.group:
                    self._layout_dirty = True
                trouble_moved |= self._forget(sid)
            st, br, role = tile_indicators(s)
            self._derived[sid] = (s, role)
            if s.blocked_by:
                self._blocked_behind[s.blocked_by] = self._blocked_behind.get(s.blocked_by, 0) + 1
            self._group_n[s.group] = self._group_n.get(s.group, 0) + 1
            if role != "normal":
                # What the map cell shows, decided once here rather than on every repaint.
                self._abnormal_cells[sid] = (role, st if st.role == role or br is None else br)
                if role == "critical":
                    self._group_crit[s.group] = self._group_crit.get(s.group, 0) + 1
            elif st.shape != "circle":
                self._marked_cells[sid] = st
            if role in TROUBLE_ROLES:
                self._trouble[sid] = (palette.STATUS_ORDER[role], _natural_key(s.name), sid)
                trouble_moved = True
        self._rack_critical = {}
        for g, n in self._group_crit.items():
            if n:
                rack = g or "(no rack)"
                self._rack_critical[rack] = self._rack_critical.get(rack, 0) + n
        self._group_all_critical = {g: self._group_crit.get(g, 0) == n for g, n in self._group_n.items() if n}
        if trouble_moved:
            ids = tuple(sid for *_, sid in sorted(self._trouble.values()))
            if ids != self._trouble_ids:
                self._trouble_ids = ids
                self._trouble_dirty = True
        if self._tally.update(changed, removed) or not self._counts_set:
            self._counts_set = True
            counts = self._tally.counts()
            self._counts = {k: counts.get(k, 0) for k, *_ in SUMMARY_KEYS}
        self.setAccessibleDescription(self.summary_text())
        self.update()

    def _forget(self, sid: str) -> bool:
        """Take one service's contribution out; True if it was among the trouble tiles."""
        prev = self._derived.pop(sid, None)
        if prev is None:
            return False
        snap, role = prev
        if snap.blocked_by:
            left = self._blocked_behind.get(snap.blocked_by, 0) - 1
            if left > 0:
                self._blocked_behind[snap.blocked_by] = left
            else:
                self._blocked_behind.pop(snap.blocked_by, None)
        self._group_n[snap.group] -= 1
        if role == "critical":
            self._group_crit[snap.group] -= 1
        self._abnormal_cells.pop(sid, None)
        self._marked_cells.pop(sid, None)
        return self._trouble.pop(sid, None) is not None

    def set_alert_age(self, oldest_unacked_age_s: float | None) -> None:
        self._alert_age = oldest_unacked_age_s
        self.setAccessibleDescription(self.summary_text())
        self.update()

    def set_theme(self, theme: palette.Theme) -> None:
        self._theme = theme
        self.update()

    def next_page(self) -> None:
        """Nothing pages any more; kept so older callers keep working."""

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
        return ""

    def tile_rect(self, service_id: str) -> QRect | None:
        """Where `service_id`'s large tile is (None: it has none, in overview mode a healthy device)."""
        self._ensure_layout()
        items = self._trouble_tiles if self._mode == "overview" else self._items
        for item in items:
            if isinstance(item, _Tile) and item.service_id == service_id:
                return QRect(item.rect)
        return None

    def tile_lines(self, snap: ServiceSnapshot, detail: bool = True,
                   indicators: tuple[palette.Indicator, palette.Indicator | None] | None = None
                   ) -> list[tuple[str, str]]:
        """(shape, words) per line under a tile's name: its state and breaker, and on the large
        tiles of the overview (`detail`) what recovery is doing, else the devices it blocks (their
        own tiles stay quiet), else its rack."""
        st, br = indicators if indicators is not None else tile_indicators(snap)[:2]
        lines: list[tuple[str, str]] = [(ind.shape, ind.word) for ind in ([st] if br is None else [st, br])]
        if detail:
            rec = recovery_text(snap.recovery, snap, self.now())
            behind = self._blocked_behind.get(snap.id, 0)
            if rec:
                lines.append(("diamond", rec))
            elif behind:
                lines.append(("square", f"blocks {behind}"))
            else:
                lines.append(("", snap.group))
        return lines

    def cell_rect(self, service_id: str) -> QRect | None:
        """Overview mode: the device's cell in the map (every device has one). None in tiles mode."""
        self._ensure_layout()
        rect = self._cells.get(service_id)
        return None if rect is None else QRect(rect)

    def groups_in_order(self) -> list[str]:
        """Group names in display order (the order headers and map racks follow)."""
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
        if self._trouble_dirty and self._mode == "overview":
            self._layout_trouble()

    def _name_widths(self, names: list[str]) -> tuple[float, float]:
        probe = QFont()
        probe.setPixelSize(100)
        probe.setBold(True)
        fm = QFontMetricsF(probe)
        name_w100 = max((fm.horizontalAdvance(n) for n in names), default=fm.horizontalAdvance("device"))
        word_w100 = max(fm.horizontalAdvance(wd) for wd in _WIDEST_WORDS)
        return name_w100, word_w100

    def _compute_layout(self) -> None:
        self._layout_dirty = False
        self._trouble_dirty = True
        self._layout_size = self.size()
        w, h = max(1, self.width()), max(1, self.height())
        margin = max(6, round(h * 0.012))
        strip_h = max(44, round(h * 0.09))
        area = QRect(margin, strip_h + margin, w - 2 * margin, h - strip_h - 2 * margin)
        groups = self._ordered_groups()
        self._group_sizes = {g: len(ids) for g, ids in groups}
        min_px = max(12, round(READABLE_PX_AT_1080 * h / 1080))
        max_px = max(min_px, round(h * 0.085))
        name_w100, word_w100 = self._name_widths([self._snaps[i].name for _, ids in groups for i in ids])

        chosen: int | None = None
        for px in range(max_px, min_px - 1, -1):
            geo = self._geometry(px, name_w100, word_w100, area.width())
            if self._total_height(groups, geo) <= area.height():
                chosen = px
                break
        self._geo = {"strip_h": strip_h, "margin": margin}
        self._cells = {}
        self._blocks = []
        self._trouble_tiles = []
        if chosen is not None:
            self._mode = "tiles"
            geo = self._geometry(chosen, name_w100, word_w100, area.width())
            self._geo.update(geo)
            self._fonts = self._make_fonts(geo)
            self._items = self._place_tiles(groups, geo, area)
        else:
            # Shrinking tiles below readable or paging would both hide alarms: switch to the map.
            self._mode = "overview"
            self._items = []
            self._layout_map(groups, area, h)
        self._refresh_info()

    @staticmethod
    def _geometry(px: int, name_w100: float, word_w100: float, avail_w: int, lines: int = 2) -> dict[str, int]:
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
        tile_h = pad * 2 + name_lh + lines * small_lh
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

    @staticmethod
    def _place_tiles(groups: list[tuple[str, list[str]]], geo: dict[str, int], area: QRect) -> list[_Header | _Tile]:
        cols, row_h, head_h = geo["cols"], geo["tile_h"] + geo["gap"], geo["header_h"]
        items: list[_Header | _Tile] = []
        y = area.top()
        for group, ids in groups:
            items.append(_Header(QRect(area.left(), y, area.width(), head_h), group, False))
            y += head_h
            for r in range(0, len(ids), cols):
                for c, sid in enumerate(ids[r:r + cols]):
                    x = area.left() + c * (geo["tile_w"] + geo["gap"])
                    items.append(_Tile(QRect(x, y, geo["tile_w"], geo["tile_h"]), sid))
                y += row_h
        return items

    # ---- overview: the map ------------------------------------------------------------------------

    def _layout_map(self, groups: list[tuple[str, list[str]]], area: QRect, h: int) -> None:
        """Largest cells at which every rack fits in MAP_SHARE of the area, racks packed on shelves."""
        budget = int(area.height() * MAP_SHARE)
        max_cell = max(MIN_CELL_PX, round(44 * h / 1080))
        best: tuple[int, int, list[_RackBlock], dict[str, QRect], int] | None = None
        for cell in range(max_cell, MIN_CELL_PX - 1, -1):
            for per_row in (4, 5, 6, 8, 10, 12, 16, 20, 25, 32, 40, 50, 64, 100):
                height, blocks, cells = self._pack(groups, cell, per_row, area)
                if height <= budget and (best is None or best[0] < cell
                                         or (best[0] == cell and height < best[1])):
                    best = (cell, height, blocks, cells, per_row)
            if best is not None:
                break
        if best is None:  # a fleet too large even at the smallest cell: keep every cell, let the map grow
            height, blocks, cells = self._pack(groups, MIN_CELL_PX, 100, area)
            best = (MIN_CELL_PX, height, blocks, cells, 100)
        cell, height, blocks, cells, _ = best
        map_top = area.bottom() + 1 - height
        shift = map_top - area.top()
        self._blocks = [_RackBlock(b.group, b.label.translated(0, shift), b.origin_x, b.origin_y + shift, b.columns,
                                   b.ids) for b in blocks]
        self._cells = {sid: r.translated(0, shift) for sid, r in cells.items()}
        label_px = self._map_label_px(cell)
        self._fonts = {"map_label": self._font(label_px, True)}
        self._geo.update({"cell": cell, "map_top": map_top, "label_px": label_px})
        gap = max(6, round(h * 0.012))
        self._trouble_area = QRect(area.left(), area.top(), area.width(), max(0, map_top - gap - area.top()))

    @staticmethod
    def _map_label_px(cell: int) -> int:
        return max(11, min(22, round(cell * 0.75)))

    def _pack(self, groups: list[tuple[str, list[str]]], cell: int, per_row: int,
              area: QRect) -> tuple[int, list[_RackBlock], dict[str, QRect]]:
        gap = max(1, cell // 7)
        step = cell + gap
        rack_gap = max(8, cell)
        label_h = round(self._map_label_px(cell) * 1.4)
        fit = max(1, (area.width() + gap) // step)
        x = y = shelf_h = 0
        blocks: list[_RackBlock] = []
        cells: dict[str, QRect] = {}
        for group, ids in groups:
            cols = max(1, min(per_row, len(ids), fit))
            rows = math.ceil(len(ids) / cols)
            bw = cols * step - gap
            bh = label_h + rows * step
            if x > 0 and x + bw > area.width():
                y += shelf_h + rack_gap // 2
                x = shelf_h = 0
            ox, oy = area.left() + x, area.top() + y
            blocks.append(_RackBlock(group, QRect(ox, oy, max(bw, cell * 4), label_h), ox, oy + label_h,
                                     cols, tuple(ids)))
            for i, sid in enumerate(ids):
                r, c = divmod(i, cols)
                cells[sid] = QRect(ox + c * step, oy + label_h + r * step, cell, cell)
            x += bw + rack_gap
            shelf_h = max(shelf_h, bh)
        return y + shelf_h, blocks, cells

    # ---- overview: trouble tiles ------------------------------------------------------------------

    def _layout_trouble(self) -> None:
        """Large tiles for the devices in trouble, as large as they fit; the rest as "+n more"."""
        self._trouble_dirty = False
        area = self._trouble_area
        ids = list(self._trouble_ids)
        self._trouble_tiles = []
        self._trouble_more = 0
        self._more_rect = QRect()
        h = max(1, self.height())
        head_px = max(12, round(h * 0.022))
        self._fonts["trouble_header"] = self._font(head_px, True)
        head_h = round(head_px * 1.6)
        self._geo["trouble_head_h"] = head_h
        body = QRect(area.left(), area.top() + head_h, area.width(), max(0, area.height() - head_h))
        if not ids or body.height() <= 0:
            self._refresh_info()
            return
        name_w100, word_w100 = self._name_widths([self._snaps[i].name for i in ids if i in self._snaps])
        min_px = max(12, round(20 * h / 1080))
        max_px = max(min_px, round(h * 0.06))
        geo: dict[str, int] = {}
        capacity = 0
        for px in range(max_px, min_px - 1, -1):
            geo = self._geometry(px, name_w100, word_w100, body.width(), lines=3)
            rows = (body.height() + geo["gap"]) // (geo["tile_h"] + geo["gap"])
            capacity = rows * geo["cols"]
            if capacity >= len(ids):
                break
        shown = ids if capacity >= len(ids) else ids[:max(0, capacity - 1)]
        self._trouble_more = len(ids) - len(shown)
        self._geo.update({k: v for k, v in geo.items()})
        self._fonts.update(self._make_fonts(geo))
        for i, sid in enumerate(shown + (["+more"] if self._trouble_more else [])):
            r, c = divmod(i, geo["cols"])
            rect = QRect(body.left() + c * (geo["tile_w"] + geo["gap"]),
                         body.top() + r * (geo["tile_h"] + geo["gap"]), geo["tile_w"], geo["tile_h"])
            if sid == "+more":
                self._more_rect = rect
            else:
                self._trouble_tiles.append(_Tile(rect, sid))
        self._refresh_info()

    def _font(self, px: int, bold: bool) -> QFont:
        f = QFont(self.font())
        f.setPixelSize(px)
        f.setBold(bold)
        return f

    def _make_fonts(self, geo: dict[str, int]) -> dict[str, QFont]:
        return {"name": self._font(geo["px"], True), "small": self._font(geo["small"], True),
                "header": self._font(geo["header_px"], True)}

    def _refresh_info(self) -> None:
        geo = self._geo
        if self._mode == "overview":
            self._info = WallLayoutInfo(font_px=geo.get("px", 0), tiles_per_page=len(self._trouble_tiles),
                                        pages=1, page=1, columns=geo.get("cols", 0),
                                        tile_width=geo.get("tile_w", 0), tile_height=geo.get("tile_h", 0),
                                        mode="overview", cell_px=geo.get("cell", 0),
                                        trouble_total=len(self._trouble_ids),
                                        trouble_shown=len(self._trouble_tiles))
            return
        tiles = sum(isinstance(i, _Tile) for i in self._items)
        self._info = WallLayoutInfo(font_px=geo.get("px", 0), tiles_per_page=tiles, pages=1, page=1,
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
            if self._mode == "overview":
                self._paint_overview(p, clip)
                return
            for item in self._items:
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

    def _paint_overview(self, p: QPainter, clip: QRect) -> None:
        t, g = self._theme, self._geo
        area = self._trouble_area
        head = QRectF(area.left(), area.top(), area.width(), g.get("trouble_head_h", 0))
        p.setFont(self._fonts["trouble_header"])
        n = len(self._trouble_ids)
        if n:
            p.setPen(QColor(t.text))
            text = f"IN TROUBLE: {n} of {len(self._snaps)} devices"
        else:
            p.setPen(QColor(t.muted))
            text = f"Nothing in trouble · {len(self._snaps)} devices"
        p.drawText(head, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
        for tile in self._trouble_tiles:
            snap = self._snaps.get(tile.service_id)
            if snap is not None and tile.rect.intersects(clip):
                self._paint_tile(p, tile.rect, snap, detail=True)
        if self._trouble_more:
            self._paint_more(p, self._more_rect)
        self._paint_map(p, clip)

    def _paint_more(self, p: QPainter, rect: QRect) -> None:
        t = self._theme
        p.setPen(QPen(QColor(t.text), 2))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRoundedRect(QRectF(rect).adjusted(1, 1, -1, -1), 4, 4)
        p.setFont(self._fonts["name"])
        p.drawText(QRectF(rect), Qt.AlignmentFlag.AlignCenter, f"+{self._trouble_more} more\nin the map below")

    def _paint_map(self, p: QPainter, clip: QRect) -> None:
        t, g = self._theme, self._geo
        cell = g["cell"]
        p.setFont(self._fonts["map_label"])
        fm = QFontMetricsF(self._fonts["map_label"])
        healthy_fill, healthy_edge = QColor(t.surface), QColor(t.grid)
        for block in self._blocks:
            label = fm.elidedText(block.group, Qt.TextElideMode.ElideRight, block.label.width())
            bad = self._rack_critical.get(block.group, 0)
            p.setPen(QColor(t.critical) if bad else QColor(t.muted))
            p.drawText(QRectF(block.label), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                       ("▲ " if bad else "") + label)
        # Healthy cells first, in one pass without shapes: quiet grey squares, cheap at 2,000 devices.
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        p.setPen(QPen(healthy_edge, 1) if cell >= 8 else Qt.PenStyle.NoPen)
        p.setBrush(healthy_fill if cell >= 8 else healthy_edge)
        abnormal: list[tuple[QRect, str, palette.Indicator]] = []
        quiet: list[QRect] = []
        for sid, rect in self._cells.items():
            if not rect.intersects(clip):
                continue
            found = self._abnormal_cells.get(sid)
            if found is None:
                quiet.append(rect.adjusted(0, 0, -1, -1))
            else:
                abnormal.append((rect, found[0], found[1]))
        p.drawRects(quiet)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        if cell >= 9:
            marked = QColor(t.muted)
            for sid, ind in self._marked_cells.items():
                rect = self._cells.get(sid)
                if rect is not None and rect.intersects(clip):
                    inset = cell * 0.22
                    paint_shape(p, QRectF(rect).adjusted(inset, inset, -inset, -inset), ind.shape, marked)
        grow = max(1, cell // 7) + 1  # abnormal cells spill over the gaps: they must pop out of the grey
        for rect, role, ind in abnormal:
            fill = QColor(palette.colour(t, role))
            p.fillRect(rect.adjusted(-grow, -grow, grow, grow), QColor(t.window))
            p.fillRect(rect.adjusted(-grow + 1, -grow + 1, grow - 1, grow - 1), fill)
            if cell >= 9:
                inset = cell * 0.14
                paint_shape(p, QRectF(rect).adjusted(inset, inset, -inset, -inset), ind.shape,
                            readable_on(fill, QColor(t.on_colour)))

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

    def _paint_tile(self, p: QPainter, rect: QRect, snap: ServiceSnapshot, detail: bool = False) -> None:
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
        lines = self.tile_lines(snap, detail, (st, br))
        s = g["shape"]
        fm_small = QFontMetricsF(self._fonts["small"])
        for shape, word in lines:
            line = QRectF(inner.left(), y, inner.width(), g["small_lh"])
            if shape:
                paint_shape(p, QRectF(line.left(), line.center().y() - s / 2, s, s), shape, word_col)
            p.setPen(word_col)
            text_rect = line.adjusted(s + g["small"] * 0.35, 0, 0, 0)
            p.drawText(text_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                       fm_small.elidedText(word, Qt.TextElideMode.ElideRight, text_rect.width()))
            y += g["small_lh"]
