"""The service table: one row per monitored service, plain snapshot values, batched updates.

`ServiceTableModel` holds one `ServiceSnapshot` per row (and an id → row dict); `data()` only looks
values up and formats them. Updates arrive in batches from the bridge and become `dataChanged` over
contiguous row ranges with explicit roles; services added or removed by a config reload become row
inserts/removals. `ServiceFilterProxy` filters (name / group / id / state words) and sorts on raw
values (`SORT_ROLE`), optionally keeping rows grouped by rack (group) first.
"""

from __future__ import annotations

import time
from enum import IntEnum
from typing import Any, Callable, Iterable, Mapping, Sequence

from PySide6.QtCore import (QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex,
                            QSortFilterProxyModel, Qt)
from PySide6.QtGui import QColor, QFont

from core.describe import format_ms
from core.events import ServiceStatus
from core.snapshot import RecoveryView, ServiceSnapshot
from gui import presentation
from gui import palette
from gui.dependency_tree import TreeMark, arrange, tree_name, tree_tip

ModelIndex = QModelIndex | QPersistentModelIndex

SNAPSHOT_ROLE = Qt.ItemDataRole.UserRole + 1  # the row's ServiceSnapshot
SORT_ROLE = Qt.ItemDataRole.UserRole + 2  # raw value to sort on
INDICATOR_ROLE = Qt.ItemDataRole.UserRole + 3  # palette.Indicator for light columns
SERVICE_ID_ROLE = Qt.ItemDataRole.UserRole + 4
STALE_ROLE = Qt.ItemDataRole.UserRole + 5  # bool: the value shown is last-known-good
# (display text, foreground QColor | None, font QFont | None, alignment int): what a plain cell paints,
# in one round trip instead of four (gui.delegates.RowDelegate).
CELL_ROLE = Qt.ItemDataRole.UserRole + 6


class Column(IntEnum):
    STATUS_LIGHT = 0
    NAME = 1
    GROUP = 2
    CHECK = 3
    STATUS = 4
    BREAKER = 5
    VALUE = 6
    LAST_MS = 7
    P50_MS = 8
    P95_MS = 9
    TREND = 10
    FAILURES = 11
    CHECKED = 12
    RECOVERY = 13
    ENDPOINT = 14


HEADERS: dict[Column, str] = {
    Column.STATUS_LIGHT: "",
    Column.NAME: "Name",
    Column.GROUP: "Group",
    Column.CHECK: "Check",
    Column.STATUS: "Status",
    Column.BREAKER: "Breaker",
    Column.VALUE: "Value",
    Column.LAST_MS: "Last ms",
    Column.P50_MS: "p50 ms",
    Column.P95_MS: "p95 ms",
    Column.TREND: "Latency",
    Column.FAILURES: "Fails",
    Column.CHECKED: "Checked",
    Column.RECOVERY: "Recovery",
    Column.ENDPOINT: "Endpoint",
}

HEADER_TIPS: dict[Column, str] = {
    Column.STATUS_LIGHT: "Status light: grey circle healthy, ring unknown, amber triangle degraded, "
                         "red triangle unhealthy, blue diamond recovering, magenta padlock suppressed",
    Column.CHECK: "How the device is checked (HTTP, TCP, PING, MODBUS, SNMP, ...)",
    Column.VALUE: "The last value the check read (a register, an OID, days left), with its recent trend",
    Column.TREND: "Recent latencies against the slow (dashed) and timeout (top) thresholds",
    Column.FAILURES: "Consecutive failed checks",
    Column.CHECKED: "Time since the last check; 'stale' means last-known-good values",
}

_NUMERIC = (Column.VALUE, Column.LAST_MS, Column.P50_MS, Column.P95_MS, Column.FAILURES)
_TIME_COLUMNS = (Column.CHECKED, Column.RECOVERY, Column.BREAKER)
_ALL_ROLES = [Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleTextRole,
              Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.FontRole, SNAPSHOT_ROLE, SORT_ROLE,
              INDICATOR_ROLE, STALE_ROLE]
_HANDLED_ROLES = frozenset(int(r) for r in (
    Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleTextRole,
    Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.FontRole, Qt.ItemDataRole.TextAlignmentRole,
    SNAPSHOT_ROLE, SORT_ROLE, INDICATOR_ROLE, SERVICE_ID_ROLE, STALE_ROLE, CELL_ROLE))
_COLUMN_COUNT = len(Column)
_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
_LEFT = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
_TIME_ROLES = [Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleTextRole]


# ---------------------------------------------------------------- formatting (pure)

format_duration = presentation.format_duration
format_age = presentation.format_age


def endpoint_label(snap: ServiceSnapshot) -> str:
    if not snap.active_endpoint:
        return ""  # a check that is not HTTP names its target in the Check column instead
    return "primary" if snap.active_endpoint_index == 0 else f"backup {snap.active_endpoint_index}"


def recovery_text(rec: RecoveryView | None, snap: ServiceSnapshot | None = None, now: float | None = None) -> str:
    """"restart 2/3 in 4 s", "failover → backup 1", "restart gave up 3/3"; "" when none."""
    if rec is None:
        return ""
    count = f"{rec.attempt}/{rec.max_attempts}"
    if rec.strategy == "failover":
        target = f"backup {snap.active_endpoint_index}" if snap and snap.active_endpoint_index else "backup"
        head = f"failover → {target}"
    elif rec.strategy == "failback":
        head = "failback → primary"
    else:
        head = f"{rec.strategy} {count}"
    if rec.state == "waiting":
        if rec.next_attempt_wall is not None and now is not None:
            return f"{head} in {format_duration(rec.next_attempt_wall - now)}"
        return f"{head} waiting"
    return {
        "in_progress": f"{head} running",
        "verifying": f"{head} verifying",
        "succeeded": f"{head} ok",
        "failed": f"{head} failed",
        "gave_up": f"{rec.strategy} gave up {count}",
    }.get(rec.state, f"{head} {rec.state}")


def checked_text(snap: ServiceSnapshot, now: float) -> str:
    """Age of the last check; for stale rows the age of the last-known-good values."""
    if snap.stale:
        ref = snap.last_ok_wall if snap.last_ok_wall is not None else snap.last_check_wall
        return "stale" if ref is None else f"stale {format_duration(now - ref)}"
    if snap.last_check_wall is None:
        return "never" if not snap.paused else "paused"
    return format_age(now - snap.last_check_wall)


def latency_role(value: float | None, snap: ServiceSnapshot) -> str:
    """Palette role of a latency value against the service's own thresholds (display only)."""
    if value is None:
        return "normal"
    if value >= snap.timeout_ms:
        return "critical"
    if value >= snap.slow_threshold_ms:
        return "warning"
    return "normal"


def trend_text(snap: ServiceSnapshot) -> str:
    values = snap.latencies_ms
    thresholds = f"slow {snap.slow_threshold_ms:.0f} ms, timeout {snap.timeout_ms:.0f} ms"
    if not values:
        return f"no recent latencies ({thresholds})"
    slow = sum(1 for v in values if v >= snap.slow_threshold_ms)
    return (f"last {len(values)} checks: {format_ms(min(values))}–{format_ms(max(values))} ms, {slow} slow "
            f"({thresholds})")


def values_text(snap: ServiceSnapshot) -> str:
    """The Value cell's tooltip: the last value and the range of the recent numeric ones."""
    head = f"{presentation.check_text(snap)} value {presentation.value_text(snap) or '—'}"
    if snap.values:
        head += (f"; last {len(snap.values)} values {presentation.format_value(min(snap.values))}"
                 f"–{presentation.format_value(max(snap.values))}")
    return head + (" (stale: last-known-good)" if snap.stale else "")


def _value_sort(snap: ServiceSnapshot) -> tuple[int, float, str]:
    # Numbers before text before nothing, so a column of registers sorts numerically.
    number = presentation.numeric_value(snap)
    if number is not None:
        return (0, number, "")
    if snap.value is not None:
        return (1, 0.0, presentation.value_text(snap).casefold())
    return (2, 0.0, "")


def sort_value(snap: ServiceSnapshot, col: int, status: palette.Indicator | None = None,
               breaker: palette.Indicator | None = None) -> Any:
    """The raw value a column sorts on (indicators are computed unless the caller has them cached)."""
    if col in (Column.STATUS_LIGHT, Column.STATUS):
        return palette.STATUS_ORDER[(status or presentation.status_indicator(snap)).role]
    if col == Column.BREAKER:
        return palette.STATUS_ORDER[(breaker or presentation.breaker_indicator(snap)).role]
    if col == Column.NAME:
        return snap.name.casefold()
    if col == Column.GROUP:
        return snap.group.casefold()
    if col == Column.CHECK:
        return presentation.check_text(snap)
    if col == Column.VALUE:
        return _value_sort(snap)
    if col == Column.LAST_MS:
        return _num(snap.last_latency_ms)
    if col == Column.P50_MS:
        return _num(snap.p50_ms)
    if col in (Column.P95_MS, Column.TREND):
        return _num(snap.p95_ms)
    if col == Column.FAILURES:
        return snap.consecutive_failures
    if col == Column.CHECKED:
        return -1.0 if snap.last_check_wall is None else snap.last_check_wall
    if col == Column.RECOVERY:
        return recovery_text(snap.recovery, snap)
    if col == Column.ENDPOINT:
        return snap.active_endpoint_index
    return None


# ---------------------------------------------------------------- the model

class ServiceTableModel(QAbstractTableModel):
    """Rows of ServiceSnapshot, one per service, in arrival order (the proxy sorts).

    Attributes:
        theme: the palette theme used for foreground colours (set_theme() repaints).
        now: a wall-clock callable; ages and countdowns are formatted against it.
    """

    def __init__(self, parent: QObject | None = None, *, now: Callable[[], float] = time.time,
                 theme: palette.Theme = palette.LIGHT) -> None:
        super().__init__(parent)
        self.now = now
        self.theme = theme
        self._rows: list[ServiceSnapshot] = []
        self._status: list[palette.Indicator] = []
        self._breaker: list[palette.Indicator] = []
        self._row_of: dict[str, int] = {}
        self._marks: dict[str, TreeMark] = {}  # grouped by dependency: where each row sits
        self._bold = QFont()
        self._bold.setBold(True)

    # ---- lookups
    def row_of(self, service_id: str) -> int | None:
        return self._row_of.get(service_id)

    def snapshot(self, service_id: str) -> ServiceSnapshot | None:
        row = self._row_of.get(service_id)
        return None if row is None else self._rows[row]

    def snapshot_at(self, row: int) -> ServiceSnapshot:
        return self._rows[row]

    def snapshots(self) -> list[ServiceSnapshot]:
        return list(self._rows)

    def indicators(self, snap: ServiceSnapshot) -> tuple[palette.Indicator, palette.Indicator]:
        """(status, breaker) indicators of `snap`: the row's, when the row holds this very snapshot
        (computed once per change, in update_snapshots), else computed now."""
        row = self._row_of.get(snap.id)
        if row is not None and self._rows[row] is snap:
            return self._status[row], self._breaker[row]
        return presentation.status_indicator(snap), presentation.breaker_indicator(snap)

    def sort_key(self, row: int, column: int) -> Any:
        """The raw value SORT_ROLE returns, without going through data() (the proxy's lessThan)."""
        return self._sort_value(self._rows[row], row, column)

    def ids(self) -> list[str]:
        return [s.id for s in self._rows]

    def status_word_at(self, row: int) -> str:
        """The Status cell's word ("HEALTHY", "BLOCKED BY switch-3")."""
        return str(self._status[row].word)

    def tree_mark(self, service_id: str) -> TreeMark | None:
        """Where the row sits while the table is grouped by dependency (None otherwise)."""
        return self._marks.get(service_id)

    def set_tree_marks(self, marks: Mapping[str, TreeMark]) -> None:
        """Group names by dependency (indent, parent mark); empty: plain names again."""
        if marks == self._marks:
            return
        old, self._marks = self._marks, dict(marks)
        rows = [r for sid, r in self._row_of.items() if old.get(sid) != self._marks.get(sid)]
        for first, last in _ranges(rows):
            self.dataChanged.emit(self.index(first, Column.NAME), self.index(last, Column.NAME), _ALL_ROLES)

    # ---- updates
    def set_theme(self, theme: palette.Theme) -> None:
        self.theme = theme
        if self._rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._rows) - 1, len(Column) - 1),
                                  [Qt.ItemDataRole.ForegroundRole])

    def update_snapshots(self, changed: Mapping[str, ServiceSnapshot]) -> None:
        """Replace changed rows (dataChanged over contiguous ranges) and append new services."""
        changed_rows: list[int] = []
        new: list[ServiceSnapshot] = []
        for sid, snap in changed.items():
            row = self._row_of.get(sid)
            if row is None:
                new.append(snap)
                continue
            self._rows[row] = snap
            self._status[row] = presentation.status_indicator(snap)
            self._breaker[row] = presentation.breaker_indicator(snap)
            changed_rows.append(row)
        last_col = len(Column) - 1
        # One dataChanged per changed row, not per contiguous range: the table is sorted by a proxy,
        # which turns a range of source rows into one span from its first to its last sorted row, and
        # the view (gui/fleet_table.py) repaints whatever visible rows a span covers. A fleet's changes
        # are scattered anyway (ranges were nearly as many as rows; bench/gui_poll_cpu.py).
        index = self.index
        for row in sorted(changed_rows):
            self.dataChanged.emit(index(row, 0), index(row, last_col), _ALL_ROLES)
        if new:
            start = len(self._rows)
            self.beginInsertRows(QModelIndex(), start, start + len(new) - 1)
            for offset, snap in enumerate(new):
                self._rows.append(snap)
                self._status.append(presentation.status_indicator(snap))
                self._breaker.append(presentation.breaker_indicator(snap))
                self._row_of[snap.id] = start + offset
            self.endInsertRows()

    def remove_services(self, service_ids: Iterable[str]) -> None:
        """Remove rows (contiguous ranges, highest first, so earlier indexes stay valid)."""
        rows = sorted({r for sid in service_ids if (r := self._row_of.get(sid)) is not None})
        if not rows:
            return
        for first, last in reversed(list(_ranges(rows))):
            self.beginRemoveRows(QModelIndex(), first, last)
            del self._rows[first:last + 1]
            del self._status[first:last + 1]
            del self._breaker[first:last + 1]
            self.endRemoveRows()
        self._row_of = {s.id: i for i, s in enumerate(self._rows)}

    def sync(self, snapshots: Mapping[str, ServiceSnapshot]) -> None:
        """Make the rows equal `snapshots` (removes what is gone, updates and adds the rest)."""
        gone = [sid for sid in self._row_of if sid not in snapshots]
        self.remove_services(gone)
        changed = {sid: s for sid, s in snapshots.items() if self.snapshot(sid) is not s}
        self.update_snapshots(changed)

    def refresh_times(self) -> None:
        """Ages and countdowns move with the clock: repaint just those columns."""
        if not self._rows:
            return
        last = len(self._rows) - 1
        for col in _TIME_COLUMNS:
            self.dataChanged.emit(self.index(0, col), self.index(last, col), _TIME_ROLES)

    # ---- QAbstractTableModel
    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else _COLUMN_COUNT

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(Column):
            return None
        col = Column(section)
        if role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[col]
        if role in (Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleTextRole):
            return HEADER_TIPS.get(col, HEADERS[col] or "Status")
        if role == Qt.ItemDataRole.TextAlignmentRole and col in _NUMERIC:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def flags(self, index: ModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return _FLAGS

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        # Called for every visible cell and role on each repaint: bail out early and cheaply.
        if role not in _HANDLED_ROLES or not index.isValid():
            return None
        row = index.row()
        if not 0 <= row < len(self._rows):
            return None
        snap = self._rows[row]
        col = index.column()  # an int; Column members compare equal to it (no enum construction)
        if role == CELL_ROLE:
            font = self._bold if col == Column.STATUS and self._status[row].role == "critical" else None
            return (self._display(snap, row, col), self._foreground(snap, row, col), font,
                    _RIGHT if col in _NUMERIC else _LEFT)
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(snap, row, col)
        if role in (Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleTextRole):
            return self._tooltip(snap, row, col)
        if role == SORT_ROLE:
            return self._sort_value(snap, row, col)
        if role == Qt.ItemDataRole.ForegroundRole:
            return self._foreground(snap, row, col)
        if role == Qt.ItemDataRole.FontRole:
            if col == Column.STATUS and self._status[row].role == "critical":
                return self._bold
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return _RIGHT if col in _NUMERIC else _LEFT
        if role == INDICATOR_ROLE:
            if col == Column.STATUS_LIGHT:
                return self._status[row]
            if col == Column.BREAKER:
                return self._breaker[row]
            return None
        if role == SNAPSHOT_ROLE:
            return snap
        if role == SERVICE_ID_ROLE:
            return snap.id
        if role == STALE_ROLE:
            return snap.stale
        return None

    # ---- formatting per role
    def _display(self, snap: ServiceSnapshot, row: int, col: int) -> str | None:
        if col == Column.STATUS_LIGHT or col == Column.TREND:
            return None  # drawn by delegates; the words are in tooltip/accessible text
        if col == Column.NAME:
            if self._marks:
                mark = self._marks.get(snap.id)
                if mark is not None:
                    return tree_name(mark, snap.name)
            return snap.name
        if col == Column.GROUP:
            return snap.group
        if col == Column.CHECK:
            return presentation.check_text(snap)
        if col == Column.VALUE:
            return presentation.value_text(snap)
        if col == Column.STATUS:
            return str(self._status[row].word)
        if col == Column.BREAKER:
            return self._breaker_word(snap, row)
        if col == Column.LAST_MS:
            return format_ms(snap.last_latency_ms)
        if col == Column.P50_MS:
            return format_ms(snap.p50_ms)
        if col == Column.P95_MS:
            return format_ms(snap.p95_ms)
        if col == Column.FAILURES:
            return str(snap.consecutive_failures) if snap.consecutive_failures else "·"
        if col == Column.CHECKED:
            return checked_text(snap, self.now())
        if col == Column.RECOVERY:
            return recovery_text(snap.recovery, snap, self.now())
        if col == Column.ENDPOINT:
            return endpoint_label(snap)
        return None

    def _breaker_word(self, snap: ServiceSnapshot, row: int) -> str:
        return str(self._breaker[row].word)

    def _tooltip(self, snap: ServiceSnapshot, row: int, col: int) -> str:
        if col == Column.STATUS_LIGHT or col == Column.STATUS:
            word = self._status[row].word
            extra = f": {snap.last_error}" if snap.last_error and self._status[row].role == "critical" else ""
            return f"{snap.name} {word}{extra}"
        if col == Column.BREAKER:
            b = snap.breaker
            word = self._breaker_word(snap, row)
            return (f"Breaker {word} — {b.consecutive_failures}/{b.failure_threshold} failures, "
                    f"trial {b.half_open_in_flight}/{b.half_open_max_calls} in flight, "
                    f"{b.half_open_successes}/{b.success_threshold} successes")
        if col == Column.TREND:
            return trend_text(snap)
        if col == Column.NAME and (mark := self._marks.get(snap.id)) is not None:
            return tree_tip(mark, snap.name)
        if col == Column.CHECK:
            return f"{presentation.check_text(snap)}: {snap.target}" if snap.target else presentation.check_text(snap)
        if col == Column.VALUE:
            return values_text(snap)
        if col == Column.CHECKED:
            text = checked_text(snap, self.now())
            if snap.stale:
                return f"{text}: values shown are last-known-good"
            return f"last check {text}"
        if col == Column.ENDPOINT:
            return f"{endpoint_label(snap)}: {snap.active_endpoint}" if snap.active_endpoint else ""
        if col in (Column.LAST_MS, Column.P50_MS, Column.P95_MS):
            shown = self._display(snap, row, col) or ""
            suffix = " (stale: last-known-good)" if snap.stale else ""
            return f"{HEADERS[col]} {shown}{suffix}"
        if col == Column.RECOVERY and snap.recovery is not None:
            detail = f" — {snap.recovery.detail}" if snap.recovery.detail else ""
            return f"{recovery_text(snap.recovery, snap, self.now())}{detail}"
        return self._display(snap, row, col) or ""

    def _sort_value(self, snap: ServiceSnapshot, row: int, col: int) -> Any:
        return sort_value(snap, col, self._status[row], self._breaker[row])

    def _foreground(self, snap: ServiceSnapshot, row: int, col: int) -> QColor | None:
        theme = self.theme
        if col == Column.STATUS:
            return QColor(palette.colour(theme, self._status[row].role))
        if col == Column.BREAKER:
            return QColor(palette.colour(theme, self._breaker[row].role))
        if col in (Column.LAST_MS, Column.P50_MS, Column.P95_MS):
            if snap.stale:
                return QColor(theme.muted)
            value = {Column.LAST_MS: snap.last_latency_ms, Column.P50_MS: snap.p50_ms,
                     Column.P95_MS: snap.p95_ms}[col]
            return QColor(palette.colour(theme, latency_role(value, snap)))
        if col in (Column.CHECKED, Column.CHECK):
            return QColor(theme.muted)
        if col == Column.VALUE:
            return QColor(theme.muted) if snap.stale else None
        if col == Column.FAILURES:
            # Behind a down parent the failures are the parent's (gui/presentation.py): counted, not red.
            return QColor(theme.critical if snap.consecutive_failures and not snap.blocked_by else theme.muted)
        if col == Column.RECOVERY:
            return QColor(theme.info)
        if col in (Column.GROUP, Column.ENDPOINT):
            if col == Column.ENDPOINT and snap.active_endpoint_index:
                return QColor(theme.info)
            return QColor(theme.muted)
        return None


def _num(value: float | None) -> float:
    return -1.0 if value is None else value


def _ranges(rows: Sequence[int]) -> Iterable[tuple[int, int]]:
    """Contiguous (first, last) ranges of the sorted, unique row numbers."""
    ordered = sorted(set(rows))
    if not ordered:
        return
    first = prev = ordered[0]
    for r in ordered[1:]:
        if r == prev + 1:
            prev = r
            continue
        yield first, prev
        first = prev = r
    yield first, prev


# ---------------------------------------------------------------- filter + sort

class ServiceFilterProxy(QSortFilterProxyModel):
    """Filters on name, id, group and state words; sorts on SORT_ROLE, grouped by rack if asked.

    Sorting and filtering follow value changes when `resort()` is called (the window does, at most
    every couple of seconds), not on every update.

    Attributes:
        group_by_rack: when true (the default) rows sort by group first, then by the chosen column.
        group_by_dependency: when true each parent is followed by the services behind it, then come
            the services without dependencies (gui/dependency_tree.py); the chosen column (and the
            rack, if grouping by rack) orders trees and siblings.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._needle = ""
        self._check_type = ""  # "" = every type
        self.group_by_rack = True
        self.group_by_dependency = False
        self.setSortRole(SORT_ROLE)
        # Not dynamic: re-sorting on every batch costs more than the batch itself at 1,000 rows and
        # makes rows jump under the pointer several times a second. The window calls resort() at a
        # bounded rate (and Qt sorts at once when a header is clicked).
        self.setDynamicSortFilter(False)
        self.setSortCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        # Sort positions computed in Python just before Qt sorts (see _prepare_ranks); None otherwise.
        self._rank: list[int] | None = None

    def set_filter_text(self, text: str) -> None:
        needle = text.strip().casefold()
        if needle == self._needle:
            return
        self.beginFilterChange()
        self._needle = needle
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        # Not dynamic: rows the filter lets back in are placed around the ones shown, not in order.
        if self.sortColumn() >= 0:
            self.sort(self.sortColumn(), self.sortOrder())

    def set_check_type(self, check_type: str) -> None:
        """Show only services checked by `check_type` ("http", "modbus", ...); "" shows all."""
        if check_type == self._check_type:
            return
        self.beginFilterChange()
        self._check_type = check_type
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        if self.sortColumn() >= 0:
            self.sort(self.sortColumn(), self.sortOrder())

    def check_type(self) -> str:
        return self._check_type

    def resort(self) -> None:
        """Re-apply the sort (and the filter, when one is set) to changed values (selection survives)."""
        column, order = self.sortColumn(), self.sortOrder()
        if self._needle or self._check_type:
            self._prepare_ranks(column, order)
            try:
                self.invalidate()
            finally:
                self._rank = None
        elif column >= 0:
            self.sort(column, order)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self._prepare_ranks(column, order)
        try:
            super().sort(column, order)
        finally:
            self._rank = None

    def set_group_by_rack(self, on: bool) -> None:
        if on == self.group_by_rack:
            return
        self.group_by_rack = on
        self._prepare_ranks(self.sortColumn(), self.sortOrder())
        try:
            self.invalidate()
        finally:
            self._rank = None

    def set_group_by_dependency(self, on: bool) -> None:
        """Group rows under the services they depend on (or back to the flat order); selection survives."""
        if on == self.group_by_dependency:
            return
        self.group_by_dependency = on
        model = self.sourceModel()
        if not on and isinstance(model, ServiceTableModel):
            model.set_tree_marks({})
        self._prepare_ranks(self.sortColumn(), self.sortOrder())
        try:
            self.invalidate()
        finally:
            self._rank = None

    def affects_order(self, old: ServiceSnapshot, new: ServiceSnapshot) -> bool:
        """Whether replacing `old` by `new` can move the row or change whether the filter shows it."""
        if old.group != new.group or old.name != new.name or old.check_type != new.check_type:
            return True
        if self.group_by_dependency and old.depends_on != new.depends_on:
            return True
        column = self.sortColumn()
        if column >= 0 and column != Column.NAME and column != Column.GROUP \
                and bool(sort_value(old, column) != sort_value(new, column)):
            return True
        if self._needle:
            return bool(presentation.status_indicator(old).word != presentation.status_indicator(new).word
                        or presentation.breaker_indicator(old).word != presentation.breaker_indicator(new).word)
        return False

    def _prepare_ranks(self, column: int, order: Qt.SortOrder) -> None:
        """Sort the source rows once in Python and keep each row's position for lessThan.

        Qt calls lessThan about n·log n times per sort; at 1,000 rows that is ~10,000 calls from C++
        into Python, and each re-acquires the GIL, which the engine thread holds much of the time. A
        Python sort of precomputed keys plus a list lookup per call costs a fraction of that.
        """
        model = self.sourceModel()
        if column < 0 or not isinstance(model, ServiceTableModel):
            self._rank = None
            return
        rows = list(range(model.rowCount()))
        names = [model.snapshot_at(r).name.casefold() for r in rows]
        values = [model.sort_key(r, column) for r in rows]
        descending = order == Qt.SortOrder.DescendingOrder
        # Stable passes, least significant first: name ascending (the tiebreak, in both orders),
        # the column's value in the chosen order, then the group ascending when grouping by rack.
        rows.sort(key=names.__getitem__)
        try:
            rows.sort(key=values.__getitem__, reverse=descending)
        except TypeError:
            rows.sort(key=lambda r: str(values[r]), reverse=descending)
        if self.group_by_rack:
            groups = [model.snapshot_at(r).group.casefold() for r in range(len(names))]
            rows.sort(key=groups.__getitem__)
        if self.group_by_dependency:
            row_by_id = {model.snapshot_at(r).id: r for r in rows}
            ordered, marks = arrange(list(row_by_id), lambda sid: _parents(sid, model.snapshot_at(row_by_id[sid]),
                                                                          row_by_id))
            rows = [row_by_id[sid] for sid in ordered]
            model.set_tree_marks(marks)
        rank = [0] * len(rows)
        for position, r in enumerate(rows):
            # Qt asks lessThan(b, a) for a descending sort: store the mirrored position then.
            rank[r] = -position if descending else position
        self._rank = rank

    def filterAcceptsRow(self, source_row: int, source_parent: ModelIndex) -> bool:
        if not self._needle and not self._check_type:
            return True
        model = self.sourceModel()
        if not isinstance(model, ServiceTableModel):
            return True
        snap = model.snapshot_at(source_row)
        if self._check_type and snap.check_type != self._check_type:
            return False
        if not self._needle:
            return True
        words = (snap.name, snap.id, snap.group, presentation.status_indicator(snap).word,
                 presentation.breaker_indicator(snap).word, presentation.check_text(snap))
        return any(self._needle in w.casefold() for w in words)

    def lessThan(self, left: ModelIndex, right: ModelIndex) -> bool:
        rank = self._rank
        if rank is not None:
            return rank[left.row()] < rank[right.row()]
        model = self.sourceModel()
        if self.group_by_rack and isinstance(model, ServiceTableModel):
            lg = model.snapshot_at(left.row()).group.casefold()
            rg = model.snapshot_at(right.row()).group.casefold()
            if lg != rg:
                # Groups stay in ascending order whichever way the column sorts.
                ascending = self.sortOrder() == Qt.SortOrder.AscendingOrder
                return (lg < rg) if ascending else (lg > rg)
        if isinstance(model, ServiceTableModel):  # skip the QModelIndex.data() round trip
            lv = model.sort_key(left.row(), left.column())
            rv = model.sort_key(right.row(), right.column())
        else:
            lv = left.data(SORT_ROLE)
            rv = right.data(SORT_ROLE)
        if lv == rv and isinstance(model, ServiceTableModel):
            # Stable tiebreak on name, so equal values do not shuffle between ticks.
            ln = model.snapshot_at(left.row()).name.casefold()
            rn = model.snapshot_at(right.row()).name.casefold()
            ascending = self.sortOrder() == Qt.SortOrder.AscendingOrder
            return (ln < rn) if ascending else (ln > rn)
        try:
            return bool(lv < rv)
        except TypeError:
            return str(lv) < str(rv)


def _parents(sid: str, snap: ServiceSnapshot, present: Mapping[str, int]) -> list[str]:
    """The ids of a row's parents as the table knows them: an attached engine's rows are qualified
    ("site-a/plc-1", core/multi.py) while their `depends_on` names its own ids ("switch-3")."""
    prefix = sid[:sid.rfind("/") + 1]
    return [p if p in present or not prefix else prefix + p for p in snap.depends_on]


def status_counts(snaps: Iterable[ServiceSnapshot]) -> dict[str, int]:
    """Counts for the status bar: one category per service (gui/presentation.py), plus the forced,
    maintenance and paused services among them."""
    snaps = list(snaps)
    out: dict[str, int] = {str(c): n for c, n in presentation.counts(snaps).items()}
    out["forced"] = sum(1 for s in snaps if s.breaker.state.forced)
    out["maintenance"] = sum(1 for s in snaps if s.maintenance)
    out["paused"] = sum(1 for s in snaps if s.paused)
    return out


def check_types(snaps: Iterable[ServiceSnapshot]) -> list[str]:
    """The check types in use, sorted by their word (for the type filter's choices)."""
    return sorted({s.check_type for s in snaps}, key=presentation.check_word)
