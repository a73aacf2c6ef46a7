"""Recovery: what the engine does about a failed service, and the policy around it.

A registry of strategies, each declaring the failure types it handles (failover for an unreachable
or unavailable endpoint, restart for a device that answers badly or not at all; nothing automatic for
a configuration error). One recovery per service at a time, each with a unique id and a status that
goes to the journal as RecoveryEvents. A restart is judged by the next health checks, not by the
action's own answer; attempts are spaced by the backoff policy, capped by `max_restart_attempts`,
rate-limited per service and group, and stopped by the storm guard.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Protocol

from core.actions import ActionResult
from core.backoff import AttemptTracker, delay_for
from core.clock import Clock
from core.config import RecoveryConfig
from core.events import Event, FailureType, RecoveryEvent, RecoveryOutcome, RecoveryState, RecoveryStrategyName
from core.ratelimit import KeyedLimiter
from core.snapshot import RecoveryView
from core.storm import StormGuard
from core.logs import RECOVERY as log



@dataclass(frozen=True, slots=True)
class RecoveryTarget:
    """What recovery needs to know about one service (the engine supplies it)."""

    service: str
    group: str
    config: RecoveryConfig
    can_restart: bool
    can_failover: bool
    on_primary: bool


class RecoveryStrategy(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def handles(self) -> frozenset[FailureType]: ...

    def applies(self, target: RecoveryTarget) -> bool: ...


@dataclass(frozen=True, slots=True)
class FailoverStrategy:
    name: str = "failover"
    handles: frozenset[FailureType] = frozenset({
        FailureType.SERVICE_UNAVAILABLE, FailureType.NETWORK_PARTITION, FailureType.RESOURCE_EXHAUSTION})

    def applies(self, target: RecoveryTarget) -> bool:
        return target.can_failover and target.on_primary and target.config.failover


@dataclass(frozen=True, slots=True)
class RestartStrategy:
    name: str = "restart"
    handles: frozenset[FailureType] = frozenset({
        FailureType.SERVICE_UNAVAILABLE, FailureType.NETWORK_PARTITION, FailureType.RESOURCE_EXHAUSTION,
        FailureType.DATA_CORRUPTION})

    def applies(self, target: RecoveryTarget) -> bool:
        return target.can_restart and target.config.auto_restart and target.config.max_restart_attempts > 0


@dataclass(slots=True)
class _Recovery:
    recovery_id: str
    strategy: RecoveryStrategyName
    max_attempts: int
    attempt: int = 0
    state: RecoveryState = RecoveryState.WAITING
    next_attempt_wall: float | None = None
    detail: str = ""
    manual: bool = False
    task: asyncio.Task[None] | None = None
    skip_wait: asyncio.Event = field(default_factory=asyncio.Event)

    def view(self) -> RecoveryView:
        return RecoveryView(self.recovery_id, self.strategy, self.state, self.attempt, self.max_attempts,
                            self.next_attempt_wall, self.detail)


class _Verifier:
    """Counts consecutive healthy checks of a service's primary endpoint."""

    def __init__(self) -> None:
        self.streak = 0
        self.waiters: list[tuple[int, asyncio.Future[None]]] = []

    def note(self, healthy: bool) -> None:
        self.streak = self.streak + 1 if healthy else 0
        for need, fut in list(self.waiters):
            if self.streak >= need and not fut.done():
                fut.set_result(None)


@dataclass(slots=True)
class RecoverySlot:
    """One service's recovery state. The service owns it (core/service.py); the manager only uses it.

    Attributes:
        tracker: restart attempts in this failure episode (forgotten after a stable period).
        verifier: healthy checks of the primary since the last restart.
        active: the recovery in progress, if any; finished: the last one, shown until healthy again.
    """

    tracker: AttemptTracker
    verifier: _Verifier = field(default_factory=_Verifier)
    active: _Recovery | None = None
    finished: _Recovery | None = None
    restarts_total: int = 0

    def reconfigure(self, cfg: RecoveryConfig) -> None:
        self.tracker.set_stable_period(cfg.reset_after_stable_seconds)

    def view(self) -> RecoveryView | None:
        rec = self.active or self.finished
        return rec.view() if rec else None


RestartRunner = Callable[[str], Awaitable[ActionResult]]
FailoverRunner = Callable[[str], Awaitable[str | None]]


class RecoveryManager:
    """Decides and runs recoveries. Commands in (on_failed, restart_now, cancel), events out (emit).

    Attributes:
        storm: the restart-storm guard (persisted by the engine).
    """

    def __init__(self, clock: Clock, emit: Callable[[Event], object], *, run_restart: RestartRunner,
                 run_failover: FailoverRunner, target: Callable[[str], RecoveryTarget | None],
                 slot: Callable[[str], RecoverySlot | None], restart_wait: Callable[[str], float],
                 take_restart: Callable[[str], None], group_limiter: KeyedLimiter,
                 on_storm: Callable[[str, str, str], None]) -> None:
        self._clock = clock
        self._emit = emit
        self._run_restart = run_restart
        self._run_failover = run_failover
        self._target = target
        self._slot = slot
        self._restart_wait = restart_wait
        self._take_restart = take_restart
        self._limit_group = group_limiter
        self._on_storm = on_storm
        self.storm = StormGuard(clock)
        self.strategies: list[RecoveryStrategy] = [FailoverStrategy(), RestartStrategy()]
        self._tasks: dict[asyncio.Task[None], str] = {}  # running restart loops and their service
        self._ids = itertools.count(1)
        self._run = uuid.uuid4().hex[:6]

    # ------------------------------------------------------------------ reads

    def active(self, service: str) -> bool:
        slot = self._slot(service)
        return slot is not None and slot.active is not None

    def forget(self, service: str) -> None:
        """A service left the config: its storm history goes with it (its slot went with the service)."""
        self.storm.forget(service)

    def _new_id(self, service: str) -> str:
        # Unique across services and runs (the seed built ids from elapsed time, which collided).
        return f"{service}#{self._run}-{next(self._ids)}"

    # ------------------------------------------------------------------ inputs from checks

    def on_check(self, service: str, primary_healthy: bool | None) -> None:
        """Every check result that tells something about the primary endpoint (None: not known)."""
        slot = self._slot(service)
        if primary_healthy is None or slot is None:
            return
        slot.verifier.note(primary_healthy)
        if primary_healthy:
            reason = slot.tracker.note_healthy()
            if reason:
                if slot.finished is not None:
                    slot.finished.detail = reason
                log.info("%s: %s", service, reason)
            if slot.active is None and slot.finished is not None and not slot.finished.state.active:
                slot.finished = None
        else:
            slot.tracker.note_unhealthy()

    async def on_failed(self, service: str, failure_type: FailureType, held: bool) -> None:
        """A service reached max_failures. Fail over at once if that applies; start restarts."""
        target = self._target(service)
        if target is None or held or self.active(service):
            return
        chosen = [s for s in self.strategies if failure_type in s.handles and s.applies(target)]
        if self.storm.blocked(service, target.group):
            # Tripped: automatic restarts stay stopped until an operator resets (failover still helps).
            chosen = [s for s in chosen if s.name != "restart"]
        if not chosen:
            log.info("%s: no automatic recovery for %s", service, failure_type.value)
            return
        for strategy in chosen:
            if strategy.name == "failover":
                await self._failover(target, failure_type)
            elif strategy.name == "restart":
                self._start_restarts(target, failure_type, manual=False)

    async def _failover(self, target: RecoveryTarget, failure_type: FailureType) -> None:
        rid = self._new_id(target.service)
        self._event(target.service, rid, "failover", 1, 1, RecoveryOutcome.STARTED, failure_type=failure_type)
        moved_to = await self._run_failover(target.service)
        outcome = RecoveryOutcome.SUCCEEDED if moved_to else RecoveryOutcome.FAILED
        self._event(target.service, rid, "failover", 1, 1, outcome, failure_type=failure_type,
                    detail=f"now using {moved_to}" if moved_to else "no healthy backup endpoint")

    def note_failback(self, service: str, detail: str) -> None:
        rid = self._new_id(service)
        self._event(service, rid, "failback", 1, 1, RecoveryOutcome.SUCCEEDED, detail=detail)

    # ------------------------------------------------------------------ restarts

    def _start_restarts(self, target: RecoveryTarget, failure_type: FailureType | None, manual: bool) -> _Recovery:
        cfg = target.config
        max_attempts = 1 if manual else cfg.max_restart_attempts
        rec = _Recovery(self._new_id(target.service), RecoveryStrategyName.RESTART, max_attempts, manual=manual)
        slot = self._slot(target.service)
        assert slot is not None  # a target exists only for a known service
        slot.active, slot.finished = rec, None
        task = asyncio.get_running_loop().create_task(
            self._restart_loop(target.service, slot, rec, failure_type), name=f"recovery:{target.service}")
        rec.task = task
        self._tasks[task] = target.service
        task.add_done_callback(self._finished_task)
        return rec

    async def restart_now(self, service: str) -> str:
        """An operator's restart: skip a pending backoff wait, or run one verified attempt now."""
        target = self._target(service)
        if target is None:
            return f"unknown service '{service}'"
        if not target.can_restart:
            return f"{service} has no restart action configured"
        slot = self._slot(service)
        rec = slot.active if slot is not None else None
        if rec is not None and rec.strategy is RecoveryStrategyName.RESTART:
            rec.skip_wait.set()
            return f"restart of {service} moved forward (attempt {max(rec.attempt, 1)})"
        self._start_restarts(target, None, manual=True)
        return f"restarting {service}"

    def cancel(self, service: str, why: str) -> None:
        slot = self._slot(service)
        rec = slot.active if slot is not None else None
        if slot is not None and rec is not None and rec.task is not None:
            slot.active = None
            rec.task.cancel()
            rec.state, rec.detail = RecoveryState.FAILED, why
            slot.finished = rec
            self._event(service, rec.recovery_id, rec.strategy, rec.attempt, rec.max_attempts,
                        RecoveryOutcome.FAILED, detail=why)

    def reset(self, service: str, group: str) -> bool:
        """Operator reset: clears the storm trip (service and its group) and the attempt count."""
        cleared = self.storm.reset(service)
        cleared = self.storm.reset(StormGuard.group_key(group)) or cleared
        slot = self._slot(service)
        if slot is not None:
            slot.tracker.reset("reset by operator")
            slot.finished = None
        return cleared

    async def _restart_loop(self, service: str, slot: RecoverySlot, rec: _Recovery,
                            failure_type: FailureType | None) -> None:
        try:
            await self._restart_attempts(service, slot, rec, failure_type)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a bug here must not kill the engine
            log.exception("%s: recovery %s crashed", service, rec.recovery_id)
            rec.state, rec.detail = RecoveryState.FAILED, "internal error"
        finally:
            if slot.active is rec:
                slot.active, slot.finished = None, rec

    async def _restart_attempts(self, service: str, slot: RecoverySlot, rec: _Recovery,
                                failure_type: FailureType | None) -> None:
        ftype = failure_type.value if failure_type else ""
        while True:
            target = self._target(service)
            if target is None:
                return
            cfg = target.config
            tracker = slot.tracker
            if rec.attempt >= rec.max_attempts:
                rec.state = RecoveryState.GAVE_UP
                rec.detail = f"gave up after {rec.attempt} attempts"
                self._event(service, rec.recovery_id, "restart", rec.attempt, rec.max_attempts,
                            RecoveryOutcome.GAVE_UP, failure_type=ftype, detail=rec.detail)
                return
            attempt = tracker.next_attempt() if not rec.manual else 1
            rec.attempt += 1
            delay = 0.0 if rec.manual else delay_for(cfg, attempt)
            rec.state = RecoveryState.WAITING
            rec.next_attempt_wall = self._clock.wall() + delay
            await self._wait(rec, delay)
            wait = max(self._restart_wait(service), self._limit_group.time_until(target.group))
            if wait > 0:
                rec.detail = f"rate limited, {wait:.0f} s"
                rec.next_attempt_wall = self._clock.wall() + wait
                await self._wait(rec, wait)
            # Checked after any rate-limit wait, right before the restart is counted: restarts queued
            # behind the limiter must not all pass a check made while the count was still low.
            if not rec.manual and self._storm_stops(service, target.group, cfg, rec, ftype):
                return
            self._take_restart(service)
            self._limit_group.try_acquire(target.group)
            rec.state, rec.next_attempt_wall, rec.detail = RecoveryState.IN_PROGRESS, None, ""
            self._event(service, rec.recovery_id, "restart", rec.attempt, rec.max_attempts,
                        RecoveryOutcome.STARTED, delay_s=delay, failure_type=ftype)
            self.storm.record(service, target.group)
            slot.restarts_total += 1
            slot.verifier.streak = 0
            result = await self._run_restart(service)
            if not result.ok:
                rec.detail = f"action failed: {result.detail}"
                self._event(service, rec.recovery_id, "restart", rec.attempt, rec.max_attempts,
                            RecoveryOutcome.FAILED, failure_type=ftype, detail=rec.detail)
                continue
            rec.state, rec.detail = RecoveryState.VERIFYING, f"action ok ({result.detail}); waiting for {cfg.verify_checks} healthy checks"
            if await self._verified(slot.verifier, cfg):
                rec.state, rec.detail = RecoveryState.SUCCEEDED, f"healthy after restart ({result.detail})"
                self._event(service, rec.recovery_id, "restart", rec.attempt, rec.max_attempts,
                            RecoveryOutcome.SUCCEEDED, failure_type=ftype, detail=rec.detail)
                return
            rec.detail = f"not healthy within {cfg.verify_timeout_seconds:g} s of the restart"
            self._event(service, rec.recovery_id, "restart", rec.attempt, rec.max_attempts,
                        RecoveryOutcome.FAILED, failure_type=ftype, detail=rec.detail)

    def _storm_stops(self, service: str, group: str, cfg: RecoveryConfig, rec: _Recovery, ftype: str) -> bool:
        already = self.storm.blocked(service, group)
        reason = already or self.storm.check(service, group, cfg)
        if not reason:
            return False
        rec.state, rec.detail = RecoveryState.GAVE_UP, f"storm guard: {reason}"
        self._event(service, rec.recovery_id, "restart", rec.attempt, rec.max_attempts,
                    RecoveryOutcome.GAVE_UP, failure_type=ftype, detail=rec.detail)
        if not already:  # tell the engine (alert, journal) once per trip, not once per failure
            key = service if service in self.storm.tripped else StormGuard.group_key(group)
            self._on_storm(service, key, reason)
        return True

    async def _wait(self, rec: _Recovery, seconds: float) -> None:
        """Sleep on the engine clock, cut short by an operator's "restart now"."""
        if seconds <= 0:
            return
        rec.skip_wait.clear()
        sleeper = asyncio.ensure_future(self._clock.sleep(seconds))
        skipper = asyncio.ensure_future(rec.skip_wait.wait())
        try:
            await asyncio.wait((sleeper, skipper), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            skipper.cancel()

    async def _verified(self, verifier: _Verifier, cfg: RecoveryConfig) -> bool:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (cfg.verify_checks, fut)
        verifier.waiters.append(entry)
        timer = asyncio.ensure_future(self._clock.sleep(cfg.verify_timeout_seconds))
        try:
            done, _ = await asyncio.wait((fut, timer), return_when=asyncio.FIRST_COMPLETED)
            return fut in done
        finally:
            timer.cancel()
            verifier.waiters.remove(entry)

    def _event(self, service: str, rid: str, strategy: str, attempt: int, max_attempts: int,
               outcome: RecoveryOutcome, delay_s: float = 0.0, failure_type: FailureType | str = "",
               detail: str = "") -> None:
        self._emit(RecoveryEvent(
            service=service, mono=self._clock.monotonic(), wall=self._clock.wall(), recovery_id=rid,
            strategy=RecoveryStrategyName(strategy), attempt=attempt, max_attempts=max_attempts, outcome=outcome,
            delay_s=round(delay_s, 3),
            failure_type=failure_type.value if isinstance(failure_type, FailureType) else failure_type,
            detail=detail))

    def _finished_task(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)

    def recovering(self) -> set[str]:
        """Services with a restart loop running (their countdowns age by themselves)."""
        return set(self._tasks.values())

    async def close(self) -> None:
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
