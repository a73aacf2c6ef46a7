"""Heartbeat monitoring: services that push "I'm alive" instead of being probed.

A configured service is expected to beat at least once per `interval`; after
`missed_intervals * interval` without a beat (counted from the last beat, or from configuration if
it never beat) it is "missed", once, and the next beat makes it "resumed". The monitor keeps a heap
of deadlines so `poll()` and `next_deadline()` cost O(log n) for thousands of devices: the engine's
ticker (every 0.25 s) asks `next_deadline()` and polls only when a miss is possible.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass

from core.clock import Clock
from core.config import HeartbeatConfig
from core.events import HeartbeatEvent, HeartbeatStatus
from core.logs import HEARTBEAT as log



@dataclass(slots=True)
class _Watch:
    """Mutable per-service state; never leaves this module."""

    interval_s: float
    anchor: float  # monotonic time of the last (re)configure: the grace period counts from here
    last_beat: float | None = None
    missed: bool = False
    token: int = -1  # the heap entry that is current; older entries for this service are stale

    def deadline(self, missed_intervals: int) -> float:
        start = self.anchor if self.last_beat is None else max(self.anchor, self.last_beat)
        return start + missed_intervals * self.interval_s


class HeartbeatMonitor:
    """Tracks heartbeat deadlines of configured services.

    Attributes:
        config: the heartbeat settings in force.
    """

    def __init__(self, clock: Clock, config: HeartbeatConfig) -> None:
        self._clock = clock
        self.config = config
        self._watches: dict[str, _Watch] = {}
        # (deadline, token, service); stale entries are dropped lazily when they surface, which is
        # cheaper than deleting from the middle of a heap on every beat. Tokens are unique across
        # services and re-configurations, so an entry of a removed-then-re-added service never
        # passes for current.
        self._heap: list[tuple[float, int, str]] = []
        self._tokens = itertools.count()

    # ------------------------------------------------------------------ commands

    def configure(self, service: str, interval_s: float | None) -> None:
        """Start, change or (with None) stop watching a service.

        A new or changed interval restarts the grace period now, so a config reload never reports
        a miss that only exists because the rules changed. Re-applying the same interval is a
        no-op: reloading an unchanged config must not postpone a detection that is already due.
        A service that is currently missed stays missed until it beats (so "resumed" still comes).
        """
        if interval_s is None:
            if self._watches.pop(service, None) is not None:
                log.debug("%s: heartbeat no longer watched", service)
            return
        if not math.isfinite(interval_s) or interval_s <= 0:
            raise ValueError(f"heartbeat interval for {service!r} must be a positive number, got {interval_s!r}")
        watch = self._watches.get(service)
        if watch is not None and watch.interval_s == interval_s:
            return
        now = self._clock.monotonic()
        if watch is None:
            watch = _Watch(interval_s=interval_s, anchor=now)
            self._watches[service] = watch
        else:
            watch.interval_s = interval_s
            watch.anchor = now
        self._schedule(service, watch)
        log.debug("%s: heartbeat expected every %gs", service, interval_s)

    def beat(self, service: str) -> HeartbeatEvent | None:
        """Record a beat; returns a "resumed" event if the service was missed, else None.

        Unknown services are ignored here; the HTTP layer asks `knows()` to choose its answer.
        """
        watch = self._watches.get(service)
        if watch is None:
            return None
        now = self._clock.monotonic()
        previous = watch.last_beat
        watch.last_beat = now
        self._schedule(service, watch)
        if not watch.missed:
            return None
        watch.missed = False
        age = None if previous is None else now - previous
        log.info("%s: heartbeat resumed", service)
        return HeartbeatEvent(service=service, mono=now, wall=self._clock.wall(),
                              status=HeartbeatStatus.RESUMED, last_beat_age_s=age)

    def set_config(self, config: HeartbeatConfig) -> None:
        self.config = config
        for service, watch in self._watches.items():
            self._schedule(service, watch)

    # ------------------------------------------------------------------ queries

    def knows(self, service: str) -> bool:
        return service in self._watches

    def status(self, service: str) -> HeartbeatStatus:
        watch = self._watches.get(service)
        if watch is None:
            return HeartbeatStatus.NONE
        if watch.missed:
            return HeartbeatStatus.MISSED
        return HeartbeatStatus.WAITING if watch.last_beat is None else HeartbeatStatus.OK

    def poll(self) -> list[HeartbeatEvent]:
        """Services whose deadline has passed since the last poll, each reported once per miss."""
        now = self._clock.monotonic()
        events: list[HeartbeatEvent] = []
        while self._heap and self._heap[0][0] <= now:
            _, token, service = heapq.heappop(self._heap)
            watch = self._watches.get(service)
            if watch is None or watch.token != token or watch.missed:
                continue
            watch.missed = True
            age = None if watch.last_beat is None else now - watch.last_beat
            log.warning("%s: heartbeat missed (%s)", service,
                        "never beat" if age is None else f"last beat {age:.1f}s ago")
            events.append(HeartbeatEvent(service=service, mono=now, wall=self._clock.wall(),
                                         status=HeartbeatStatus.MISSED, last_beat_age_s=age))
        return events

    def next_deadline(self) -> float | None:
        """Earliest monotonic time at which `poll()` could report something, or None."""
        while self._heap:
            _, token, service = self._heap[0]
            watch = self._watches.get(service)
            if watch is not None and watch.token == token and not watch.missed:
                return self._heap[0][0]
            heapq.heappop(self._heap)
        return None

    # ------------------------------------------------------------------ internals

    def _schedule(self, service: str, watch: _Watch) -> None:
        watch.token = next(self._tokens)
        heapq.heappush(self._heap, (watch.deadline(self.config.missed_intervals), watch.token, service))
        # A device beating far faster than its interval leaves many stale entries; rebuild the heap
        # from the live ones when they dominate, so memory stays proportional to the fleet.
        if len(self._heap) > 4 * len(self._watches) + 64:
            self._heap = [e for e in self._heap
                          if (w := self._watches.get(e[2])) is not None and w.token == e[1]]
            heapq.heapify(self._heap)
