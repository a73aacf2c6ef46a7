"""The one place where engine reads become Qt signals.

The engine runs on its own thread; its read methods are thread-safe and cheap. One named timer on
the GUI thread polls them, diffs against what it saw last and emits only what changed, so views are
fed in batches (at most one update per tick) and never talk to the engine themselves.
"""

from __future__ import annotations

import logging
from typing import Mapping

from PySide6.QtCore import QObject, QTimer, Signal

from core.snapshot import AlertView, EngineControl, EngineStats, ServiceSnapshot

log = logging.getLogger("gui.bridge")

DEFAULT_INTERVAL_MS = 150


class EngineBridge(QObject):
    """Polls the engine's thread-safe reads on one timer and emits what changed.

    Attributes:
        engine: the engine (EngineControl) being read.
        timer: the single polling timer (objectName "bridge_timer").
        snapshots: the latest full snapshot map (id → snapshot), for consumers that need all rows.
        alerts: the latest alert list.
        stats: the latest engine statistics (None before the first tick).

    Signals:
        snapshots_changed(dict): id → ServiceSnapshot, only services whose snapshot changed or appeared.
        services_removed(list): ids that disappeared (a config reload removed them).
        events_arrived(list): events drained from the engine since the last tick, oldest first.
        alerts_changed(list): the full alert list, whenever it differs from the last one.
        stats_changed(object): EngineStats, every tick.
        ticked(): after each poll (views that show ages/countdowns refresh on it).
    """

    snapshots_changed = Signal(object)
    services_removed = Signal(object)
    events_arrived = Signal(object)
    alerts_changed = Signal(object)
    stats_changed = Signal(object)
    ticked = Signal()

    def __init__(self, engine: EngineControl, interval_ms: int = DEFAULT_INTERVAL_MS,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("engine_bridge")
        self.engine = engine
        self.snapshots: dict[str, ServiceSnapshot] = {}
        self.alerts: list[AlertView] = []
        self.stats: EngineStats | None = None
        self.timer = QTimer(self)
        self.timer.setObjectName("bridge_timer")
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._on_timer_timeout)

    def start(self) -> None:
        """Poll once now, then on every timer tick."""
        self.poll()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _on_timer_timeout(self) -> None:
        try:
            self.poll()
        except Exception:  # a bad tick must not kill the timer; the next one may succeed
            log.exception("polling the engine failed")

    def poll(self) -> None:
        """Read the engine once and emit what changed since the last poll."""
        events = self.engine.drain_events()
        current = self.engine.snapshots()
        changed = _changed(self.snapshots, current)
        removed = [sid for sid in self.snapshots if sid not in current]
        self.snapshots = dict(current)
        if removed:
            self.services_removed.emit(removed)
        if changed:
            self.snapshots_changed.emit(changed)
        if events:
            self.events_arrived.emit(list(events))
        alerts = list(self.engine.alerts())
        if alerts != self.alerts:
            self.alerts = alerts
            self.alerts_changed.emit(alerts)
        self.stats = self.engine.stats()
        self.stats_changed.emit(self.stats)
        self.ticked.emit()


def _changed(old: Mapping[str, ServiceSnapshot],
             new: Mapping[str, ServiceSnapshot]) -> dict[str, ServiceSnapshot]:
    """Snapshots in `new` that are new or differ from `old` (identity first: the cheap common case)."""
    out: dict[str, ServiceSnapshot] = {}
    for sid, snap in new.items():
        prev = old.get(sid)
        if prev is snap:
            continue
        # checks_total moves with every check, so it settles most real changes without comparing
        # every field (a full compare of ~1,250 changed snapshots per poll cost ~5 ms at 5,000).
        if prev is None or prev.checks_total != snap.checks_total or prev != snap:
            out[sid] = snap
    return out
