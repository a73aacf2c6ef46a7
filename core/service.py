"""Service: everything the engine holds about one monitored service, as one unit.

A service owns its monitor (breaker, check, verdict, windows), its recovery slot (attempt tracker,
verifier, current and last recovery), its restart rate bucket, its manual maintenance and its cached
snapshot. The engine adds, reconfigures and drops it whole on reload, so no per-service fact is
left behind in some other component's dict when a service goes away.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.clock import Clock
from core.config import RateLimitConfig, ServiceConfig
from core.monitor import ServiceMonitor
from core.ratelimit import TokenBucket, per_minute
from core.recovery import RecoverySlot
from core.snapshot import ServiceSnapshot


@dataclass(frozen=True, slots=True)
class Maintenance:
    """Maintenance of a service or a group, switched on by an operator; `until_wall` None = no end.

    `until_mono` is the same end on monotonic time, fixed when it is set (or restored): a wall-clock
    step (an NTP correction) must not end a window an hour early.
    """

    until_wall: float | None
    until_mono: float | None = None

    @classmethod
    def ending(cls, until_wall: float | None, now_wall: float, now_mono: float) -> Maintenance:
        if until_wall is None:
            return cls(None)
        return cls(until_wall, now_mono + (until_wall - now_wall))

    def over(self, now_mono: float) -> bool:
        return self.until_mono is not None and now_mono >= self.until_mono


class Service:
    """One monitored service.

    Attributes:
        monitor: the check loop and verdict.
        recovery: the recovery slot the recovery manager works on.
        restart_bucket: the per-service restart rate limit.
        maintenance: manual maintenance of this service itself (its group's lives with the engine).
        snapshot: the last snapshot built, or None when something shown changed since.
    """

    def __init__(self, monitor: ServiceMonitor, recovery: RecoverySlot, restart_bucket: TokenBucket) -> None:
        self.monitor = monitor
        self.recovery = recovery
        self.restart_bucket = restart_bucket
        self.maintenance: Maintenance | None = None
        self.snapshot: ServiceSnapshot | None = None

    @property
    def cfg(self) -> ServiceConfig:
        return self.monitor.cfg

    @property
    def id(self) -> str:
        return self.monitor.cfg.id

    @staticmethod
    def restart_limit(rate_limit: RateLimitConfig, clock: Clock) -> TokenBucket:
        return TokenBucket(*per_minute(rate_limit.restarts_per_service_per_minute), clock)

    def ticking(self) -> bool:
        """A countdown is shown (breaker reopen time, recovery wait): the snapshot ages by itself."""
        return self.monitor.breaker.next_transition_at() is not None or self.recovery.active is not None
