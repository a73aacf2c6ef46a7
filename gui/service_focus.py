"""The focused service: the one device the detail panel, the latency chart, the value chart and the
timeline's "selected only" filter are about. It loads the device's history from the engine when the
focus or the charts' range changes, and adds live points and markers as checks and events arrive.
The two charts share one range: they are read against each other (a slow answer, an odd value).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Coroutine, Iterable, Mapping, Sequence

from PySide6.QtCore import QObject

from core.events import AnomalyEvent, BreakerEvent, Event, RebootEvent, ServiceStatus
from core.snapshot import EngineControl, ServiceSnapshot
from gui import presentation
from gui.chart import LatencyChart
from gui.detail_panel import DetailPanel
from gui.timeline import TimelineView
from gui.value_chart import ValueChart

log = logging.getLogger("gui.window")

Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Future[Any]"]


class ServiceFocus(QObject):
    """Keeps the detail panel and both charts on the focused service.

    Attributes:
        engine: asked for latency and value history.
        detail / chart / value_chart / timeline: the views it feeds.
        snapshot_of: the current snapshot of a service id (the table model's), or None.
        spawn: runs a coroutine as a task its owner can wait for and cancel.
        now: wall-clock callable (history windows).
    """

    def __init__(self, engine: EngineControl, detail: DetailPanel, chart: LatencyChart, value_chart: ValueChart,
                 timeline: TimelineView, snapshot_of: Callable[[str], ServiceSnapshot | None], spawn: Spawn,
                 now: Callable[[], float] = time.time, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("service_focus")
        self.engine = engine
        self.detail = detail
        self.chart = chart
        self.value_chart = value_chart
        self.timeline = timeline
        self.snapshot_of = snapshot_of
        self.spawn = spawn
        self.now = now
        self._service_id: str | None = None
        self._last_point_wall: float | None = None  # the newest check already drawn
        chart.range_changed.connect(self._on_chart_range_changed)
        value_chart.range_changed.connect(self._on_value_chart_range_changed)

    def service_id(self) -> str | None:
        return self._service_id

    def focus(self, service_id: str | None) -> None:
        """Show `service_id` (None: nothing) and load its history."""
        if service_id == self._service_id:
            return
        self._service_id = service_id
        snap = self.snapshot_of(service_id) if service_id else None
        self.detail.set_snapshot(snap)
        self.timeline.set_selected_service(service_id)
        self.chart.set_service(snap)
        self._last_point_wall = snap.last_check_wall if snap else None
        self.value_chart.set_service(snap)
        self.value_chart.setVisible(snap is not None and presentation.has_numeric_values(snap))
        self.reload_history()

    def reload_history(self) -> None:
        """Load the focused service's latency and value history for the charts' range again."""
        if self._service_id:
            self.spawn(self._load_latency_history(self._service_id))
            self.spawn(self._load_value_history(self._service_id))

    def update_snapshots(self, changed: Mapping[str, ServiceSnapshot]) -> None:
        """New snapshots: refresh the detail and, after a new check, add its point to the charts."""
        current = changed.get(self._service_id) if self._service_id else None
        if current is None:
            return
        self.detail.set_snapshot(current)
        self.value_chart.update_snapshot(current)
        if current.last_check_wall is not None and current.last_check_wall != self._last_point_wall:
            self._last_point_wall = current.last_check_wall
            ms = None if current.status is ServiceStatus.UNHEALTHY else current.last_latency_ms
            self.chart.add_point(current.last_check_wall, ms)
            number = presentation.numeric_value(current)
            if number is not None:
                self.value_chart.add_point(current.last_check_wall, number)
                self.value_chart.show()

    def remove_services(self, removed: Iterable[str]) -> None:
        if self._service_id in set(removed):
            self.focus(None)

    def add_events(self, events: Sequence[Event]) -> None:
        """Mark the focused service's breaker changes and anomalies on the latency chart, reboots on the values."""
        if not self._service_id:
            return
        for e in events:
            if e.service != self._service_id:
                continue
            if isinstance(e, BreakerEvent):
                self.chart.add_marker(e.wall, "breaker", e.to_state.value.replace("_", "-").upper()
                                      if hasattr(e.to_state, "value") else str(e.to_state),
                                      quiet=bool(e.blocked_by) and not e.to_state.forced)
            elif isinstance(e, AnomalyEvent):
                self.chart.add_marker(e.wall, "anomaly", f"{e.latency_ms:.0f} ms (baseline {e.baseline_ms:.0f})")
            elif isinstance(e, RebootEvent):
                self.value_chart.add_reboot(e.wall)

    async def _load_latency_history(self, service_id: str) -> None:
        range_s = self.chart.range_seconds()
        try:
            points = await self.engine.latency_history(service_id, self.now() - range_s, rollup=range_s > 3600)
        except Exception:
            log.exception("loading latency history for %s failed", service_id)
            return
        if service_id == self._service_id:  # the focus may have moved on while the engine answered
            self.chart.set_history(list(points))

    async def _load_value_history(self, service_id: str) -> None:
        range_s = self.value_chart.range_seconds()
        try:
            points = await self.engine.value_history(service_id, self.now() - range_s, rollup=range_s > 3600)
        except Exception:
            log.exception("loading value history for %s failed", service_id)
            return
        if service_id == self._service_id:
            self.value_chart.set_history(list(points))
            if points:
                self.value_chart.show()

    def _on_chart_range_changed(self, seconds: int) -> None:
        if self.value_chart.range_seconds() != seconds:
            self.value_chart.set_range_seconds(seconds)
        self.reload_history()

    def _on_value_chart_range_changed(self, seconds: int) -> None:
        self.chart.set_range_seconds(seconds)
        self._on_chart_range_changed(seconds)
