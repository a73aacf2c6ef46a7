"""Monitor: one service's check loop and everything the engine knows about that service.

It owns the service's breaker, its latency window, its anomaly detector, its active endpoint
(primary or a backup after failover) and its verdict. It decides nothing about recovery; it tells the
engine what it saw (events and hooks) and the engine's recovery manager acts.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections import deque
from typing import TYPE_CHECKING

from core.actions import describe
from core.anomaly import LatencyAnomalyDetector
from core.breaker import CircuitBreaker, CircuitOpen
from core.checks.base import Check, execute
from core.config import AnomalyConfig, ServiceConfig
from core.events import BreakerEvent, BreakerState, FailureType, ProbeEvent, ServiceStatus
from core.probe import ProbeResult
from core.snapshot import ServiceSnapshot

if TYPE_CHECKING:
    from core.engine import Engine

log = logging.getLogger("core.probe")

_WINDOW = 120  # latencies kept for p50/p95 and sparklines


def _quantile(sorted_values: list[float], q: float) -> float:
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


class ServiceMonitor:
    """Checks one service on its interval, through its breaker.

    Attributes:
        cfg: the service's effective settings.
        breaker: the service's circuit breaker (guards checks of the active endpoint).
        active_index: 0 for the primary endpoint, n for backup_endpoints[n-1].
    """

    def __init__(self, engine: Engine, cfg: ServiceConfig, anomaly: AnomalyConfig,
                 initial_breaker: BreakerState = BreakerState.CLOSED) -> None:
        self._engine = engine
        self.cfg = cfg
        clock = engine.clock
        self.breaker = CircuitBreaker(cfg.id, cfg.circuit_breaker, clock, listener=self._on_breaker_event,
                                      initial=initial_breaker)
        self.anomaly = LatencyAnomalyDetector(cfg.id, anomaly, clock)
        self.anomaly_enabled = anomaly.enabled
        self.status = ServiceStatus.UNKNOWN
        self.failed = False
        self.consecutive_failures = 0
        self.latencies: deque[float] = deque(maxlen=_WINDOW)
        self.last_latency_ms: float | None = None
        self.last_check_wall: float | None = None
        self.last_ok_wall: float | None = None
        self.last_error: str | None = None
        self.last_failure_type = FailureType.SERVICE_UNAVAILABLE
        self.active_index = 0
        self.primary_streak = 0
        self.paused = False
        self.checks_total = 0
        self.task: asyncio.Task[None] | None = None
        self.check: Check | None = None  # made on first use, remade when the check settings change
        self._snapshot: ServiceSnapshot | None = None
        self._rng = random.Random(hash(cfg.id))

    # ------------------------------------------------------------------ loop

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"monitor:{self.cfg.id}")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None

    async def _run(self) -> None:
        clock = self._engine.clock
        # Spread first checks over one interval so a fleet does not start in lockstep.
        await clock.sleep(self._rng.uniform(0, self.cfg.fault_detection.check_interval_seconds))
        while True:
            started = clock.monotonic()
            try:
                await self.check_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one service's bug must not stop the others
                log.exception("%s: check crashed", self.cfg.id)
            fd = self.cfg.fault_detection
            jitter = fd.check_interval_seconds * fd.jitter_fraction * self._rng.uniform(-0.5, 0.5)
            spent = clock.monotonic() - started
            await clock.sleep(max(0.05, fd.check_interval_seconds + jitter - spent))

    async def check_once(self) -> None:
        if self.paused:
            return
        engine = self._engine
        try:
            permit = self.breaker.acquire()
        except CircuitOpen:
            self.invalidate()
            if self.active_index != 0:
                await self._probe_primary_for_failback()
            return
        await engine.check_limiter.acquire()
        fd = self.cfg.fault_detection
        if self.check is None:
            self.check = engine.make_check(self.cfg)
        try:
            result = await execute(self.check, self.active_endpoint, check_type=self.cfg.check_type,
                                   timeout_s=fd.timeout_seconds, slow_ms=fd.slow_response_threshold_ms)
        except asyncio.CancelledError:
            self.breaker.release(permit)
            raise
        duration = result.latency_ms / 1000.0
        if result.ok:
            self.breaker.record_success(permit, duration_s=duration)
        else:
            self.breaker.record_failure(permit, duration_s=duration, reason=result.error or "check failed")
        self.apply(result)
        if self.active_index != 0:
            await self._probe_primary_for_failback()

    # ------------------------------------------------------------------ verdicts

    def apply(self, result: ProbeResult) -> None:
        """Fold one check result into the service's state and tell the engine what changed."""
        engine = self._engine
        clock = engine.clock
        now_wall = clock.wall()
        self.checks_total += 1
        engine.note_check()
        self.last_check_wall = now_wall
        prev_status, prev_failed, prev_cf = self.status, self.failed, self.consecutive_failures
        fd = self.cfg.fault_detection
        if result.ok:
            self.last_latency_ms = result.latency_ms
            self.latencies.append(round(result.latency_ms, 2))  # rounded once, not per snapshot
            self.last_ok_wall = now_wall
            self.consecutive_failures = 0
            self.failed = False
            self.status = result.status
            self.last_error = result.error
        else:
            self.last_latency_ms = None
            self.consecutive_failures += 1
            self.status = ServiceStatus.UNHEALTHY
            self.last_error = result.error
            self.last_failure_type = result.failure_type or FailureType.SERVICE_UNAVAILABLE
            self.failed = self.consecutive_failures >= fd.max_failures
        engine.record_latency(self.cfg.id, now_wall, result.latency_ms if result.ok else None, result.ok)
        if result.ok and self.anomaly_enabled:
            anomaly = self.anomaly.observe(result.latency_ms)
            if anomaly is not None:
                engine.publish(anomaly)
        counting = not result.ok and self.consecutive_failures <= fd.max_failures
        if self.status != prev_status or self.failed != prev_failed or (counting and self.consecutive_failures != prev_cf):
            engine.publish(ProbeEvent(
                service=self.cfg.id, mono=clock.monotonic(), wall=now_wall, status=self.status,
                latency_ms=round(result.latency_ms, 2), error=result.error,
                consecutive_failures=self.consecutive_failures, endpoint=self.active_endpoint))
        if self.active_index == 0:
            engine.recovery.on_check(self.cfg.id, result.ok)
        if self.failed and not prev_failed:
            engine.on_service_failed(self, self.last_failure_type)
        self.invalidate()

    async def _probe_primary_for_failback(self) -> None:
        """While on a backup, check the primary on the side; enough healthy checks fail back."""
        engine = self._engine
        fd = self.cfg.fault_detection
        result = await engine.prober.check(
            self.cfg.endpoint + self.cfg.health_path, timeout_s=fd.timeout_seconds,
            slow_ms=fd.slow_response_threshold_ms, max_body_bytes=fd.max_body_bytes,
            tls_verify=self.cfg.tls_verify, ca_bundle=self.cfg.ca_bundle)
        self.primary_streak = self.primary_streak + 1 if result.ok else 0
        engine.recovery.on_check(self.cfg.id, result.ok)
        if self.primary_streak >= self.cfg.recovery.failback_after_checks:
            backup = self.active_endpoint
            self.switch_endpoint(0, f"primary healthy for {self.primary_streak} checks")
            engine.recovery.note_failback(self.cfg.id, f"back to primary {self.cfg.endpoint} from {backup}")

    def switch_endpoint(self, index: int, reason: str) -> None:
        """Move checks to another endpoint; its breaker history does not carry over."""
        self.active_index = index
        self.primary_streak = 0
        self.consecutive_failures = 0
        self.failed = False
        if not self.breaker.state.forced:
            self.breaker.reset(reason)
        self.invalidate()

    def set_paused(self, paused: bool) -> None:
        if paused == self.paused:
            return
        self.paused = paused
        engine = self._engine
        if paused:
            prev = self.status
            self.status = ServiceStatus.UNKNOWN
            if prev is not ServiceStatus.UNKNOWN:
                engine.publish(ProbeEvent(
                    service=self.cfg.id, mono=engine.clock.monotonic(), wall=engine.clock.wall(),
                    status=self.status, latency_ms=None, error="checks paused",
                    consecutive_failures=self.consecutive_failures, endpoint=self.active_endpoint))
        self.invalidate()

    def reconfigure(self, cfg: ServiceConfig, anomaly: AnomalyConfig) -> None:
        endpoints_changed = cfg.endpoints != self.cfg.endpoints or cfg.health_path != self.cfg.health_path
        if (cfg.check, cfg.health_path, cfg.tls_verify, cfg.ca_bundle, cfg.fault_detection.max_body_bytes) != (
                self.cfg.check, self.cfg.health_path, self.cfg.tls_verify, self.cfg.ca_bundle,
                self.cfg.fault_detection.max_body_bytes):
            self.check = None
        self.cfg = cfg
        self.breaker.set_config(cfg.circuit_breaker)
        self.anomaly.set_config(anomaly)
        self.anomaly_enabled = anomaly.enabled
        if endpoints_changed:
            self.active_index = 0
            self.latencies.clear()
            self.switch_endpoint(0, "endpoint changed by config reload")
        self.invalidate()

    # ------------------------------------------------------------------ views

    def _on_breaker_event(self, event: BreakerEvent) -> None:
        self.invalidate()
        self._engine.on_breaker_event(self, event)

    def invalidate(self) -> None:
        """Something shown in the snapshot changed: rebuild it on the next read."""
        self._snapshot = None

    @property
    def active_endpoint(self) -> str:
        return self.cfg.endpoints[min(self.active_index, len(self.cfg.endpoints) - 1)]

    def snapshot(self) -> ServiceSnapshot:
        """A frozen view; rebuilt only when something changed (or a countdown runs)."""
        # Cache first: most monitors are unchanged between ticks. Only countdowns (an open breaker's
        # reopen time, a recovery in progress) force a rebuild of an otherwise unchanged snapshot.
        ticking = self.breaker.next_transition_at() is not None or self._engine.recovery.active(self.cfg.id)
        if self._snapshot is not None and not ticking:
            return self._snapshot
        bview = self.breaker.view()
        rview = self._engine.recovery.view(self.cfg.id)
        lat = sorted(self.latencies)
        cfg = self.cfg
        fd = cfg.fault_detection
        maint, maint_until = self._engine.maintenance_of(cfg.id, cfg.group)
        snap = ServiceSnapshot(
            id=cfg.id, name=cfg.name, group=cfg.group, endpoint=cfg.endpoint,
            active_endpoint=self.active_endpoint, active_endpoint_index=self.active_index,
            status=self.status, failed=self.failed, consecutive_failures=self.consecutive_failures,
            last_latency_ms=self.last_latency_ms,
            p50_ms=_quantile(lat, 0.5) if lat else None, p95_ms=_quantile(lat, 0.95) if lat else None,
            last_check_wall=self.last_check_wall, last_ok_wall=self.last_ok_wall, last_error=self.last_error,
            stale=self.failed or bview.state.blocks_calls or self.paused,
            breaker=bview, recovery=rview, paused=self.paused, maintenance=maint,
            maintenance_until_wall=maint_until, heartbeat=self._engine.heartbeat.status(cfg.id),
            storm_tripped=self._engine.recovery.storm.blocked(cfg.id, cfg.group) is not None,
            slow_threshold_ms=fd.slow_response_threshold_ms, timeout_ms=fd.timeout_seconds * 1000.0,
            check_interval_s=fd.check_interval_seconds, restart_action=describe(cfg.restart),
            checks_total=self.checks_total, restarts_total=self._engine.recovery.restarts_total(cfg.id),
            latencies_ms=tuple(itertools.islice(self.latencies, max(0, len(self.latencies) - 30), None)),
            max_failures=fd.max_failures,
        )
        self._snapshot = snap
        return snap