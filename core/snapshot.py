"""Snapshots: plain, frozen views of a service's state, safe to hand across threads.

The engine produces them; the GUI, the HTTP API and `--headless` status lines only read them.
`EngineControl` is the command surface everything outside the core uses: commands in, events out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, Sequence

from core.events import (AlertSeverity, BreakerState, Event, HeartbeatStatus, RecoveryState, RecoveryStrategyName,
                         ServiceStatus)

if TYPE_CHECKING:
    from core.maintenance_board import MaintenanceWindowView


@dataclass(frozen=True, slots=True)
class BreakerView:
    state: BreakerState
    consecutive_failures: int
    half_open_in_flight: int
    half_open_max_calls: int
    half_open_successes: int
    success_threshold: int
    failure_threshold: int
    reopen_in_s: float | None  # while open: seconds until half-open


@dataclass(frozen=True, slots=True)
class RecoveryView:
    recovery_id: str
    strategy: RecoveryStrategyName
    state: RecoveryState
    attempt: int
    max_attempts: int
    next_attempt_wall: float | None  # when the next attempt fires (countdown in the GUI)
    detail: str  # e.g. "backoff reset after 600 s healthy"


@dataclass(frozen=True, slots=True)
class ServiceSnapshot:
    """Everything a row, a tile or a detail panel shows about one service.

    Attributes:
        status: the current verdict (unknown before the first check or while paused).
        failed: `max_failures` consecutive failures reached.
        last_ok_wall: wall time of the last healthy/degraded check (last-known-good).
        stale: the numbers shown are last-known-good, not current (failed or breaker open).
        latencies_ms: the last few latencies (newest last), for sparklines.
    """

    id: str
    name: str
    group: str
    endpoint: str
    active_endpoint: str
    active_endpoint_index: int  # 0 = primary, n = backup_endpoints[n-1]
    status: ServiceStatus
    failed: bool
    consecutive_failures: int
    last_latency_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    last_check_wall: float | None
    last_ok_wall: float | None
    last_error: str | None
    stale: bool
    breaker: BreakerView
    recovery: RecoveryView | None
    paused: bool
    maintenance: bool
    maintenance_until_wall: float | None
    heartbeat: HeartbeatStatus  # NONE when not configured
    storm_tripped: bool
    slow_threshold_ms: float
    timeout_ms: float
    check_interval_s: float
    restart_action: str  # "" when none; "POST http://..." or "command: argv..."
    checks_total: int
    restarts_total: int
    latencies_ms: tuple[float, ...] = ()
    max_failures: int = 3
    check_type: str = "http"
    target: str = ""  # what is checked, in a few words (the URL, "tcp host:port", ...)
    value: float | str | bool | None = None  # the last value read, for types that read one
    detail: tuple[tuple[str, str], ...] = ()  # per-type facts: register and bounds, days left, ...
    values: tuple[float, ...] = ()  # the last few numeric values, newest last (sparklines)
    last_reboot_wall: float | None = None
    depends_on: tuple[str, ...] = ()  # the services this one sits behind
    blocked_by: str = ""  # the down parent that blocks it ("" when none)


@dataclass(frozen=True, slots=True)
class EngineStats:
    checks_total: int
    checks_per_second: float
    loop_lag_ms: float  # p99 of the engine loop's recent lag
    services: int
    events_total: int


@dataclass(frozen=True, slots=True)
class AlertView:
    """An alert as shown: active or cleared, acknowledged or not (two independent facts)."""

    id: str
    rule: str
    service: str
    group: str
    severity: AlertSeverity
    message: str
    active: bool
    acknowledged: bool
    silenced_until_wall: float | None
    first_wall: float
    last_wall: float
    count: int

    @property
    def silenced(self) -> bool:
        return self.silenced_until_wall is not None


@dataclass(frozen=True, slots=True)
class CommandResult:
    ok: bool
    message: str


class EngineControl(Protocol):
    """Commands into the engine. Every command is journaled with its origin."""

    async def force_open(self, service_ids: Sequence[str], origin: str) -> CommandResult: ...
    async def force_close(self, service_ids: Sequence[str], origin: str) -> CommandResult: ...
    async def reset(self, service_ids: Sequence[str], origin: str) -> CommandResult: ...
    async def restart(self, service_ids: Sequence[str], origin: str) -> CommandResult: ...
    async def pause(self, service_ids: Sequence[str], origin: str) -> CommandResult: ...
    async def resume(self, service_ids: Sequence[str], origin: str) -> CommandResult: ...
    async def acknowledge(self, alert_ids: Sequence[str], origin: str) -> CommandResult: ...
    async def maintenance(self, targets: Sequence[str], on: bool, origin: str,
                          until_wall: float | None = None) -> CommandResult: ...
    async def reload(self, path: str, origin: str, *, edit: str = "", service: str = "") -> CommandResult: ...

    async def silence(self, alert_ids: Sequence[str], seconds: float, origin: str) -> CommandResult: ...
    async def latency_history(self, service_id: str, since_wall: float,
                              rollup: bool = False) -> list[tuple[float, float | None]]: ...
    async def value_history(self, service_id: str, since_wall: float,
                            rollup: bool = False) -> list[tuple[float, float]]: ...
    async def journal_events(self, service_id: str | None = None, limit: int = 1000) -> list[Event]: ...
    # Open and upcoming `[[maintenance]]` windows (within horizon_s) with the services they cover.
    async def scheduled_maintenance(self, horizon_s: float = 7 * 86400.0) -> list[MaintenanceWindowView]: ...

    # Thread-safe reads: cheap, never block, callable from any thread.
    def snapshots(self) -> dict[str, ServiceSnapshot]: ...
    def stats(self) -> EngineStats: ...
    def alerts(self) -> list[AlertView]: ...
    def drain_events(self) -> list[Event]: ...  # events published since the last drain (journaled ones)
    @property
    def config_path(self) -> str | None: ...  # the running config's file (what the window watches)
    def alert_sound(self) -> bool: ...  # `[alerts] sound`: the window beeps for new critical alerts
