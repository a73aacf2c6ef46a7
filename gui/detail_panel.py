"""The detail panel: everything about the selected device, read from its snapshot.

Device identity and endpoints, its effective settings, the breaker with its trial budget and reopen
countdown, recovery (attempt n of N, countdown to the next attempt, why the backoff reset), maintenance,
heartbeat, last error and the restart-storm guard. It formats; it never decides.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Callable

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from core.snapshot import ServiceSnapshot
from core.events import RecoveryState
from gui import presentation
from gui import palette
from core.describe import format_ms
from gui.service_model import checked_text, endpoint_label, format_duration, recovery_text
from gui.shapes import paint_shape


class IndicatorLabel(QWidget):
    """A shape in its role colour followed by the word (the word is also the accessible name).

    Attributes:
        indicator: what is shown (None: nothing).
        theme: palette theme.
    """

    def __init__(self, parent: QWidget | None = None, theme: palette.Theme = palette.LIGHT) -> None:
        super().__init__(parent)
        self.indicator: palette.Indicator | None = None
        self.theme = theme
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_indicator(self, indicator: palette.Indicator | None) -> None:
        if indicator == self.indicator:
            return
        self.indicator = indicator
        word = indicator.word if indicator else ""
        self.setAccessibleName(word)
        self.setToolTip(word)
        self.update()

    def text(self) -> str:
        return self.indicator.word if self.indicator else ""

    def sizeHint(self) -> QSize:
        fm = self.fontMetrics()
        return QSize(fm.horizontalAdvance(self.text()) + 28, max(20, fm.height() + 4))

    def paintEvent(self, event: QPaintEvent) -> None:
        if self.indicator is None:
            return
        painter = QPainter(self)
        colour = QColor(palette.colour(self.theme, self.indicator.role))
        side = min(14.0, self.height() - 4.0)
        paint_shape(painter, QRectF(2, (self.height() - side) / 2, side, side), self.indicator.shape, colour)
        font = self.font()
        font.setBold(self.indicator.role != "normal")
        painter.setFont(font)
        painter.setPen(colour if self.indicator.role != "normal" else QColor(self.theme.text))
        painter.drawText(QRectF(side + 8, 0, self.width() - side - 8, self.height()),
                         int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft), self.text())
        painter.end()


def _clock_time(wall: float | None) -> str:
    return "—" if wall is None else datetime.fromtimestamp(wall).strftime("%H:%M:%S")


class DetailPanel(QFrame):
    """Facts about one service (objectName "detail_panel").

    Attributes:
        snapshot: the snapshot shown (None: nothing selected).
        now: wall-clock callable for countdowns and ages.
        fields: field key → value QLabel (tests and automation read them by key).
    """

    FIELDS: tuple[tuple[str, str, str], ...] = (
        # (section, key, label) — what needs attention first: breaker and recovery, then identity.
        ("Breaker", "breaker_failures", "Failures"),
        ("Breaker", "breaker_trial", "Trial in flight"),
        ("Breaker", "breaker_successes", "Trial successes"),
        ("Breaker", "breaker_reopen", "Next trial"),
        ("Recovery", "recovery", "Recovery"),
        ("Recovery", "recovery_next", "Next attempt"),
        ("Recovery", "recovery_detail", "Detail"),
        ("Recovery", "storm", "Storm guard"),
        ("Check", "check", "Check"),
        ("Check", "target", "Target"),
        ("Check", "value", "Value"),
        ("Check", "last_reboot", "Last reboot"),
        ("Device", "last_error", "Last error"),
        ("Device", "checked", "Last check"),
        ("Device", "latency", "Latency (last/p50/p95)"),
        ("Device", "id", "Id"),
        ("Device", "group", "Group"),
        ("Device", "depends_on", "Depends on"),
        ("Device", "behind", "Behind it"),
        ("Device", "endpoint", "Endpoint"),
        ("Device", "active_endpoint", "Active endpoint"),
        ("Device", "maintenance", "Maintenance"),
        ("Device", "scheduled", "Scheduled"),
        ("Device", "heartbeat", "Heartbeat"),
        ("Device", "counters", "Checks / restarts"),
        ("Settings", "interval", "Check interval"),
        ("Settings", "timeout", "Timeout"),
        ("Settings", "slow", "Slow threshold"),
        ("Settings", "restart_action", "Restart action"),
    )

    # What the check itself reported (`ServiceSnapshot.detail`: register and bounds, OID value, last
    # message age, days left): rows made once, after the Check section's fixed rows, and shown as
    # many as the check gave. Pooled rather than rebuilt so a grid row never moves under the reader.
    CHECK_ROWS = 8
    _CHECK_ROWS_AFTER = "last_reboot"

    def __init__(self, parent: QWidget | None = None, *, theme: palette.Theme = palette.LIGHT,
                 now: Callable[[], float] = time.time) -> None:
        super().__init__(parent)
        self.setObjectName("detail_panel")
        self.setAccessibleName("Device details")
        self.snapshot: ServiceSnapshot | None = None
        self.now = now
        # Names of the services that depend on a service id; the window supplies it (it sees them all).
        self.children_of: Callable[[str], list[str]] = lambda _sid: []
        # The scheduled maintenance window a service is in or next near, as (text, palette role);
        # gui/maintenance_view.py supplies it ("" when none).
        self.scheduled_of: Callable[[str], tuple[str, str]] = lambda _sid: ("", "normal")
        self.theme = theme
        self.title = QLabel("No device selected", self)
        self.title.setObjectName("detail_title")
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.35)
        font.setBold(True)
        self.title.setFont(font)
        self.status = IndicatorLabel(self, theme)
        self.status.setObjectName("detail_status")
        self.breaker = IndicatorLabel(self, theme)
        self.breaker.setObjectName("detail_breaker")

        grid = QGridLayout()
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(2)
        grid.setColumnStretch(1, 1)
        self.fields: dict[str, QLabel] = {}
        self._check_rows: list[tuple[QLabel, QLabel]] = []
        row = 0
        section = ""
        for sec, key, label in self.FIELDS:
            if sec != section:
                section = sec
                head = QLabel(sec.upper(), self)
                head.setProperty("heading", True)
                grid.addWidget(head, row, 0, 1, 2)
                row += 1
                if sec == "Breaker":
                    grid.addWidget(self._field_label("State"), row, 0)
                    grid.addWidget(self.breaker, row, 1)
                    row += 1
            grid.addWidget(self._field_label(label), row, 0, Qt.AlignmentFlag.AlignTop)
            value = QLabel("—", self)
            value.setObjectName(f"detail_{key}")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setWordWrap(True)
            grid.addWidget(value, row, 1)
            self.fields[key] = value
            row += 1
            if key == self._CHECK_ROWS_AFTER:
                for i in range(self.CHECK_ROWS):
                    name = self._field_label("")
                    name.setObjectName(f"detail_check_label_{i}")
                    text = QLabel("", self)
                    text.setObjectName(f"detail_check_{i}")
                    text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
                    text.setWordWrap(True)
                    grid.addWidget(name, row, 0, Qt.AlignmentFlag.AlignTop)
                    grid.addWidget(text, row, 1)
                    name.hide()
                    text.hide()
                    self._check_rows.append((name, text))
                    row += 1

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.setSpacing(4)
        layout.addWidget(self.title)
        layout.addWidget(self.status)
        layout.addLayout(grid)
        layout.addStretch(1)
        self.set_snapshot(None)

    def _field_label(self, text: str) -> QLabel:
        label = QLabel(text, self)
        label.setProperty("field", True)
        return label

    def set_theme(self, theme: palette.Theme) -> None:
        self.theme = theme
        self.status.theme = theme
        self.breaker.theme = theme
        self.refresh()

    def set_snapshot(self, snap: ServiceSnapshot | None) -> None:
        self.snapshot = snap
        self.refresh()

    def text(self, key: str) -> str:
        return self.fields[key].text()

    def check_rows(self) -> list[tuple[str, str]]:
        """The check's own rows as shown: (label, text), in the check's order."""
        return [(name.text(), text.text()) for name, text in self._check_rows if not text.isHidden()]

    def _set_check_rows(self, rows: tuple[tuple[str, str], ...]) -> None:
        if len(rows) > self.CHECK_ROWS:
            # Never drop facts silently: the overflow goes into the last row.
            rows = rows[:self.CHECK_ROWS - 1] + (("More", "; ".join(f"{k}: {v}" for k, v in rows[self.CHECK_ROWS - 1:])),)
        for i, (name, text) in enumerate(self._check_rows):
            if i < len(rows):
                label, value = rows[i]
                label = label[:1].upper() + label[1:]
                if name.text() != label:
                    name.setText(label)
                if text.text() != value:
                    text.setText(value)
                name.show()
                text.show()
            else:
                name.hide()
                text.hide()

    def _set(self, key: str, text: str, role: str = "normal") -> None:
        label = self.fields[key]
        if label.text() != text:
            label.setText(text)
        colour = "" if role == "normal" else f"color: {palette.colour(self.theme, role)};"
        if label.styleSheet() != colour:
            label.setStyleSheet(colour)

    def refresh(self) -> None:
        """Re-read the snapshot (and the clock, for countdowns)."""
        snap = self.snapshot
        if snap is None:
            self.title.setText("No device selected")
            self.status.set_indicator(None)
            self.breaker.set_indicator(None)
            for key in self.fields:
                self._set(key, "—")
            self._set_check_rows(())
            return
        now = self.now()
        self.title.setText(snap.name)
        self.status.set_indicator(presentation.status_indicator(snap))
        self.breaker.set_indicator(presentation.breaker_indicator(snap))
        self._set("id", snap.id)
        self._set("group", snap.group)
        self._set("endpoint", snap.endpoint or "—")
        self._set("active_endpoint", f"{endpoint_label(snap)} — {snap.active_endpoint}" if snap.active_endpoint
                  else "—", "info" if snap.active_endpoint_index else "normal")
        self._set("checked", checked_text(snap, now) + (" (last-known-good values)" if snap.stale else ""),
                  "normal")
        self._set("latency", " / ".join(format_ms(v) for v in (snap.last_latency_ms, snap.p50_ms, snap.p95_ms))
                  + " ms")
        self._set("interval", f"{snap.check_interval_s:g} s")
        self._set("timeout", f"{snap.timeout_ms:g} ms")
        self._set("slow", f"{snap.slow_threshold_ms:g} ms")
        self._set("restart_action", snap.restart_action or "none configured")
        b = snap.breaker
        self._set("breaker_failures", f"{b.consecutive_failures} of {b.failure_threshold} to open",
                  "critical" if b.consecutive_failures else "normal")
        self._set("breaker_trial", f"{b.half_open_in_flight} of {b.half_open_max_calls}")
        self._set("breaker_successes", f"{b.half_open_successes} of {b.success_threshold} to close")
        self._set("breaker_reopen", "—" if b.reopen_in_s is None else f"in {format_duration(b.reopen_in_s)}",
                  "critical" if b.reopen_in_s is not None else "normal")
        rec = snap.recovery
        if rec is None:
            self._set("recovery", "none")
            self._set("recovery_next", "—")
            self._set("recovery_detail", "—")
        else:
            active = rec.state.active
            role = "info" if active else ("critical" if rec.state in (RecoveryState.FAILED, RecoveryState.GAVE_UP)
                                          else "normal")
            self._set("recovery", f"{rec.strategy}: attempt {rec.attempt} of {rec.max_attempts}, "
                                  f"{rec.state.replace('_', ' ')}", role)
            if rec.next_attempt_wall is None:
                self._set("recovery_next", "—")
            else:
                self._set("recovery_next", f"in {format_duration(rec.next_attempt_wall - now)} "
                                           f"({_clock_time(rec.next_attempt_wall)})", "info")
            self._set("recovery_detail", rec.detail or recovery_text(rec, snap, now) or "—")
        self._set("storm", "TRIPPED: automatic restarts stopped until reset" if snap.storm_tripped else "ok",
                  "critical" if snap.storm_tripped else "normal")
        if snap.maintenance:
            until = "" if snap.maintenance_until_wall is None else \
                f" until {_clock_time(snap.maintenance_until_wall)}"
            self._set("maintenance", f"ON{until}", "suppressed")
        else:
            self._set("maintenance", "paused" if snap.paused else "off", "suppressed" if snap.paused else "normal")
        hb = snap.heartbeat or "not configured"
        self._set("heartbeat", hb, "critical" if snap.heartbeat == "missed" else "normal")
        in_trouble = presentation.status_indicator(snap).role == "critical"
        self._set("last_error", snap.last_error or "—", "critical" if snap.last_error and in_trouble else "normal")
        self._set("counters", f"{snap.checks_total} / {snap.restarts_total}")
        self._set("check", presentation.check_text(snap))
        self._set("target", snap.target or snap.endpoint or "—")
        value = presentation.value_text(snap)
        self._set("value", value + " (last-known-good)" if value and snap.stale else value or "—")
        if snap.last_reboot_wall is None:
            self._set("last_reboot", "none seen")
        else:
            self._set("last_reboot", f"{_clock_time(snap.last_reboot_wall)} "
                                     f"({presentation.format_age(now - snap.last_reboot_wall)})",
                      "warning" if presentation.reboot_recent(snap, now) else "normal")
        self._set_check_rows(snap.detail)
        self._set_relations(snap)
        scheduled, role = self.scheduled_of(snap.id)
        self._set("scheduled", scheduled or "none this week", role)

    def _set_relations(self, snap: ServiceSnapshot) -> None:
        parents = snap.depends_on
        blocked_by = snap.blocked_by
        if blocked_by:
            self._set("depends_on", f"{', '.join(parents) or blocked_by} — BLOCKED BY {blocked_by} (down)",
                      "critical")
        else:
            self._set("depends_on", ", ".join(parents) or "nothing")
        children = self.children_of(snap.id)
        shown = ", ".join(children[:5]) + (f" … ({len(children)} devices)" if len(children) > 5 else "")
        self._set("behind", shown or "nothing")
