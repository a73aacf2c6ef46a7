"""The alert banner: visible only while an unacknowledged alert exists (ISA-18.2: cleared but never
acknowledged alerts still count). It shows counts by severity, the oldest unacknowledged alert and its
age, and offers Acknowledge and Silence 1 h. It only asks; the window sends the commands.
"""

from __future__ import annotations

import time
from typing import Callable, Mapping, Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from core.snapshot import AlertView
from gui.service_model import format_duration

SEVERITIES = ("critical", "warning", "info")
SILENCE_SECONDS = 3600.0


def unacknowledged(alerts: Sequence[AlertView], now: float) -> list[AlertView]:
    """Alerts that still need a person: not acknowledged and not currently silenced."""
    return [a for a in alerts
            if not a.acknowledged and (a.silenced_until_wall is None or a.silenced_until_wall <= now)]


def worst_severity(alerts: Sequence[AlertView]) -> str:
    for sev in SEVERITIES:
        if any(a.severity == sev for a in alerts):
            return sev
    return "info"


class AlertBanner(QFrame):
    """Banner above the table while unacknowledged alerts exist.

    Attributes:
        now: wall-clock callable (ages).
        names: service id → display name (the window keeps it current).
        pending: the unacknowledged alerts shown, oldest first.

    Signals:
        acknowledge_requested(list): alert ids to acknowledge (all shown).
        silence_requested(list, float): alert ids and seconds to silence them.
    """

    acknowledge_requested = Signal(object)
    silence_requested = Signal(object, float)

    def __init__(self, parent: QWidget | None = None, now: Callable[[], float] = time.time) -> None:
        super().__init__(parent)
        self.setObjectName("alert_banner")
        self.setAccessibleName("Alert banner")
        self.now = now
        self.names: Mapping[str, str] = {}
        self.pending: list[AlertView] = []
        self.counts_label = QLabel(self)
        self.counts_label.setObjectName("alert_banner_counts")
        self.text_label = QLabel(self)
        self.text_label.setObjectName("alert_banner_text")
        self.text_label.setTextFormat(Qt.TextFormat.PlainText)
        self.ack_button = QPushButton("Acknowledge all", self)
        self.ack_button.setObjectName("alert_banner_acknowledge")
        self.ack_button.clicked.connect(self._on_ack_button_clicked)
        self.silence_button = QPushButton("Silence 1 h", self)
        self.silence_button.setObjectName("alert_banner_silence")
        self.silence_button.setToolTip("Shelve these alerts for one hour; they return by themselves")
        self.silence_button.clicked.connect(self._on_silence_button_clicked)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 6, 8, 6)
        layout.addWidget(self.counts_label)
        layout.addSpacing(12)
        layout.addWidget(self.text_label, 1)
        layout.addWidget(self.ack_button)
        layout.addWidget(self.silence_button)
        self.setVisible(False)

    def set_alerts(self, alerts: Sequence[AlertView]) -> None:
        """Show the unacknowledged alerts (hide when there are none)."""
        now = self.now()
        self.pending = sorted(unacknowledged(alerts, now), key=lambda a: a.first_wall)
        if not self.pending:
            self.setVisible(False)
            return
        severity = worst_severity(self.pending)
        for w in (self, self.counts_label):
            if w.property("severity") != severity:
                w.setProperty("severity", severity)
                w.style().unpolish(w)
                w.style().polish(w)
        self.counts_label.setText(self.counts_text())
        self.refresh_age()
        self.setVisible(True)

    def counts_text(self) -> str:
        parts = []
        for sev in SEVERITIES:
            n = sum(1 for a in self.pending if a.severity == sev)
            if n:
                parts.append(f"{n} {sev}")
        return "▲ " + " · ".join(parts) + " unacknowledged"

    def refresh_age(self) -> None:
        """Ages move with the clock; the window calls this on its tick."""
        if not self.pending:
            return
        oldest = self.pending[0]
        state = "active" if oldest.active else "cleared"
        where = self._where(oldest)
        text = (f"Oldest: {where}{oldest.message} ({state}, "
                f"{format_duration(self.now() - oldest.first_wall)} ago)")
        self.text_label.setText(text)
        self.setToolTip("\n".join(f"[{a.severity}] {self._where(a)}{a.message}" for a in self.pending))

    def _where(self, alert: AlertView) -> str:
        if alert.service:
            return f"{self.names.get(alert.service, alert.service)}: "
        return f"{alert.group}: " if alert.group else ""

    def oldest_age(self) -> float | None:
        return None if not self.pending else self.now() - self.pending[0].first_wall

    def _on_ack_button_clicked(self) -> None:
        if self.pending:
            self.acknowledge_requested.emit([a.id for a in self.pending])

    def _on_silence_button_clicked(self) -> None:
        if self.pending:
            self.silence_requested.emit([a.id for a in self.pending], SILENCE_SECONDS)
