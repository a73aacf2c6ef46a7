"""Restart-storm guard, after an Erlang supervisor's intensity/period.

More than `storm_max_restarts` restarts of one service (or `group_storm_max_restarts` of one group)
within `storm_period_seconds` means restarting is not helping: automatic restarts stop for it until
an operator resets it. Trips are remembered (the engine persists them in the journal).
"""

from __future__ import annotations

from collections import deque

from core.clock import Clock
from core.config import RecoveryConfig


class StormGuard:
    """Counts restarts per service and per group in a sliding period.

    Attributes:
        tripped: target ("svc" or "group:rack-a") -> why it tripped.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._times: dict[str, deque[float]] = {}
        self.tripped: dict[str, str] = {}

    @staticmethod
    def group_key(group: str) -> str:
        return f"group:{group}"

    def _count(self, key: str, period: float) -> int:
        times = self._times.get(key)
        if not times:
            return 0
        cutoff = self._clock.monotonic() - period
        while times and times[0] <= cutoff:
            times.popleft()
        return len(times)

    def blocked(self, service: str, group: str) -> str | None:
        """Why automatic restarts of this service are stopped, or None."""
        return self.tripped.get(service) or self.tripped.get(self.group_key(group))

    def check(self, service: str, group: str, cfg: RecoveryConfig) -> str | None:
        """Before an automatic restart: trips (and says why) if one more would make a storm."""
        reason = self.blocked(service, group)
        if reason:
            return reason
        period = cfg.storm_period_seconds
        if self._count(service, period) >= cfg.storm_max_restarts:
            reason = f"more than {cfg.storm_max_restarts} restarts in {period:g} s"
            self.tripped[service] = reason
            return reason
        gkey = self.group_key(group)
        if self._count(gkey, period) >= cfg.group_storm_max_restarts:
            reason = f"group {group}: more than {cfg.group_storm_max_restarts} restarts in {period:g} s"
            self.tripped[gkey] = reason
            return reason
        return None

    def record(self, service: str, group: str) -> None:
        now = self._clock.monotonic()
        for key in (service, self.group_key(group)):
            self._times.setdefault(key, deque()).append(now)

    def forget(self, service: str) -> None:
        """The service left the config: its restart times and trip go (its group's stay)."""
        self._times.pop(service, None)
        self.tripped.pop(service, None)

    def reset(self, target: str) -> bool:
        """An operator's reset: forget the trip and the history that led to it."""
        self._times.pop(target, None)
        return self.tripped.pop(target, None) is not None
