"""Engine: the running fault-tolerance system. Commands in, events out.

It is built whole: its clock, journal, check factory and restart runner are given to it (core/
assembly.py makes the real ones), so its behaviour is tested on a FakeClock with fake checks, in
milliseconds. It owns one `Service` per configured service (core/service.py), the heartbeat monitor,
the alert manager, the recovery manager and one ticker for what happens on time (breakers going
half-open, missed heartbeats, alert timers, maintenance expiry, journal flushes). The ticker touches
only what is due, so an idle device costs nothing between its checks.

Every event is appended to the journal *before* anyone else sees it (`publish`), so no consumer ever
sees an event that a crash then loses. Everything runs on one asyncio loop; nothing here knows Qt.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections import deque
from typing import Awaitable, Callable, Sequence

import aiohttp

from core.actions import ActionResult, describe_action
from core.alerts import AlertManager, LogSink, WebhookSink
from core.backoff import AttemptTracker
from core.checks.base import Check, CheckResult
from core.clock import Clock, iso_utc
from core.dependencies import BlockTracker, DependencyGraph
from core.config import Config, ConfigError, RestartAction, ServiceConfig, load_config
from core.events import (ActionEvent, AlertEvent, AlertSeverity, BreakerEvent, BreakerState, Event,
                         FailureType, HeartbeatEvent)
from core.heartbeat import HeartbeatMonitor
from core.journal import Journal
from core.logs import ENGINE as log
from core.monitor import ServiceMonitor, wake_grid_s
from core.notify import AlertContext, Notifier, ServiceInfo, recovery_words
from core.projector import project
from core.ratelimit import KeyedLimiter, TokenBucket, per_minute
from core.recovery import RecoveryManager, RecoverySlot, RecoveryTarget
from core.maintenance_board import MaintenanceWindowView, board
from core.schedule import MaintenanceSchedule, ScheduleTracker
from core.service import Maintenance, Service
from core.snapshot import AlertView, CommandResult, EngineStats, ServiceSnapshot

TICK_S = 0.25
FLUSH_EVERY_S = 0.25  # small, frequent flushes: at 2,000 checks/s a 1 s batch blocked 22-90 ms
PRUNE_EVERY_S = 60.0  # small, frequent deletes: an hourly prune of a big fleet blocks the loop ~1 s

CheckFactory = Callable[[ServiceConfig], Check]
RestartRunner = Callable[[RestartAction, float], Awaitable[ActionResult]]


class _Ports:
    """The monitors' narrow view of the engine (core.monitor.MonitorPorts)."""

    def __init__(self, engine: Engine) -> None:
        self._e = engine

    async def admit_check(self) -> None:
        await self._e.check_limiter.acquire()

    def publish(self, event: Event) -> Event:
        return self._e.publish(event)

    def record_check(self, service: str, wall: float, result: CheckResult) -> None:
        e = self._e
        e.checks_total += 1
        e.journal.record_latency(service, wall, result.latency_ms if result.ok else None, result.ok)
        value = result.value
        # Numbers only (as the snapshot's sparkline values): a bool is a state, not a reading to chart.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            e.journal.record_value(service, wall, float(value))

    def primary_checked(self, service: str, healthy: bool) -> None:
        self._e.recovery.on_check(service, healthy)

    def service_failed(self, service: str, failure_type: FailureType) -> None:
        self._e.service_failed(service, failure_type)

    def failed_back(self, service: str, detail: str) -> None:
        self._e.recovery.note_failback(service, detail)

    def breaker_changed(self, event: BreakerEvent) -> None:
        self._e.breaker_changed(event)

    def changed(self, service: str) -> None:
        self._e.changed(service)


class Engine:
    """The fault-tolerance engine for one config.

    Attributes:
        config: the running config (replaced by a successful reload).
        journal: the event journal and latency history.
        services: one Service per configured service, by id.
        listeners: called with every published (journaled) event, in order.
    """

    def __init__(self, config: Config, *, clock: Clock, journal: Journal, checks: CheckFactory,
                 restarts: RestartRunner, session: aiohttp.ClientSession | None = None,
                 on_close: Callable[[], Awaitable[None]] | None = None) -> None:
        self.config = config
        self.clock = clock
        self.journal = journal
        self._make_check = checks
        self._run_action = restarts
        self._session = session  # for the webhook only; checks reach the network through `checks`
        self._on_close = on_close
        self.listeners: list[Callable[[Event], None]] = []
        self.services: dict[str, Service] = {}
        self._ports = _Ports(self)
        self.heartbeat = HeartbeatMonitor(clock, config.heartbeat)
        self.alert_manager = AlertManager(config.alerts, clock, self._group_map(config), self._emit_alert,
                                          maintenance=self._target_in_maintenance)
        rl = config.rate_limit
        self.check_limiter = TokenBucket(rl.checks_per_second, rl.checks_burst, clock)
        self._group_limiter = KeyedLimiter(*per_minute(rl.restarts_per_group_per_minute), clock)
        self.recovery = RecoveryManager(
            clock, self.publish, run_restart=self._run_restart, run_failover=self._run_failover,
            target=self._recovery_target, slot=self._slot, restart_wait=self._restart_wait,
            take_restart=self._take_restart, group_limiter=self._group_limiter, on_storm=self._on_storm)
        self._group_maintenance: dict[str, Maintenance] = {}
        self._blocks = BlockTracker(DependencyGraph({s.id: s.depends_on for s in config.services}))
        self._set_settle(config)
        self._schedule = ScheduleTracker(MaintenanceSchedule(config.maintenance))
        self._windows_open = False  # whether the schedule has an open window (kept by _follow_schedule)
        self.wake_grid_s = self._wake_grid(config)
        self.notifier: Notifier | None = self._make_notifier(config)
        self._dirty: set[str] = set()  # services whose snapshot must be rebuilt
        self._timed: set[str] = set()  # services whose breaker has a time-based transition pending
        self._maintained: set[str] = set()  # services in maintenance of their own (for its expiry)
        self._removed: set[str] = set()  # dropped services still in the published snapshots
        self._tasks: list[asyncio.Task[object]] = []
        self._background: set[asyncio.Task[object]] = set()
        self._webhook: WebhookSink | None = None
        self._log_sink = LogSink()
        self._snapshots: dict[str, ServiceSnapshot] = {}
        self._alert_views: list[AlertView] = []
        self._alerts_dirty = True
        self.checks_total = 0
        self._checks_window: deque[tuple[float, int]] = deque(maxlen=40)
        self._lags: deque[float] = deque(maxlen=200)
        self._events_total = 0
        self._running = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._setup_webhook()
        if self.notifier is not None:
            self._spawn(self.notifier.run())
        restored = self._restore_state()
        for svc in self.config.services:
            self._add(svc, restored.get(svc.id, BreakerState.CLOSED))
        self._running = True
        # Reports tell time not monitored from downtime by these two (a start without a stop: a crash).
        self._action("engine_start", "", "engine", True, f"{len(self.services)} services")
        self._tasks.append(asyncio.get_running_loop().create_task(self._ticker(), name="engine:ticker"))
        self.refresh_views()
        log.info("engine started: %d services, journal %s", len(self.services), self.journal.path)

    async def stop(self) -> None:
        """Stop checks and recoveries, close what the engine was given to own, flush the journal."""
        if not self._running:
            return
        self._running = False
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await asyncio.gather(*(s.monitor.stop() for s in self.services.values()), return_exceptions=True)
        await self.recovery.close()
        for t in list(self._background):
            t.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._webhook is not None:
            self._webhook.close()
        if self.notifier is not None:
            self.notifier.close()
        await asyncio.gather(*(s.monitor.check.close() for s in self.services.values()), return_exceptions=True)
        self._action("engine_stop", "", "engine", True, "")
        self.journal.flush()
        if self._on_close is not None:
            await self._on_close()
        log.info("engine stopped")

    def _add(self, cfg: ServiceConfig, breaker_state: BreakerState = BreakerState.CLOSED) -> None:
        monitor = ServiceMonitor(cfg, self.config.anomaly, clock=self.clock, ports=self._ports,
                                 check=self._make_check(cfg), initial_breaker=breaker_state)
        monitor.wake_grid_s = self.wake_grid_s
        if self.journal.load_state(f"paused:{cfg.id}", False):
            monitor.paused = True
        slot = RecoverySlot(AttemptTracker(self.clock, cfg.recovery.reset_after_stable_seconds))
        svc = Service(monitor, slot, Service.restart_limit(self.config.rate_limit, self.clock))
        maint = self.journal.load_state(f"maint:{cfg.id}", None)
        if isinstance(maint, dict):
            svc.maintenance = Maintenance.ending(maint.get("until"), self.clock.wall(), self.clock.monotonic())
            self._maintained.add(cfg.id)
        self.services[cfg.id] = svc
        if breaker_state is BreakerState.OPEN:
            self._timed.add(cfg.id)
        self.heartbeat.configure(cfg.id, cfg.heartbeat_interval_seconds)
        self._dirty.add(cfg.id)
        monitor.start()

    async def _drop(self, service_id: str) -> None:
        """A service left the config: stop it and let every component forget it."""
        svc = self.services.pop(service_id)
        self.recovery.cancel(service_id, "service removed from config")
        self.recovery.forget(service_id)
        self.alert_manager.forget(service_id)
        self.heartbeat.configure(service_id, None)
        self._dirty.discard(service_id)
        self._timed.discard(service_id)
        self._maintained.discard(service_id)
        self._removed.add(service_id)
        await svc.monitor.stop()
        await svc.monitor.check.close()

    def _restore_state(self) -> dict[str, BreakerState]:
        """Forced breakers, maintenance of groups and storm trips survive a restart (and a crash)."""
        forced: dict[str, BreakerState] = {}
        for key, value in self.journal.state_items("breaker:").items():
            try:
                forced[key.split(":", 1)[1]] = BreakerState(value)
            except ValueError:
                pass
        groups = {s.group for s in self.config.services}
        for key, value in self.journal.state_items("maint:").items():
            target = key.split(":", 1)[1]
            if target in groups and self.config.service(target) is None:
                until = value.get("until") if isinstance(value, dict) else None
                self._group_maintenance[target] = Maintenance.ending(until, self.clock.wall(), self.clock.monotonic())
        for key, value in self.journal.state_items("storm:").items():
            self.recovery.storm.tripped[key.split(":", 1)[1]] = str(value)
        return forced

    def _setup_webhook(self) -> None:
        cfg = self.config.alerts
        if cfg.webhook_url and self._session is not None:
            token = os.environ.get(cfg.webhook_token_env) if cfg.webhook_token_env else None
            self._webhook = WebhookSink(cfg.webhook_url, self._session, self.clock, cfg.webhook_retries, token)
            self._spawn(self._webhook.run())

    def _spawn(self, coro: "asyncio.Future[object] | object") -> None:
        task: asyncio.Task[object] = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(_log_task_error)

    # ------------------------------------------------------------------ events

    def publish(self, event: Event) -> Event:
        """Journal first, then tell everyone. The order is the crash-safety contract."""
        try:
            stored = self.journal.append(event)
        except Exception:  # noqa: BLE001 - a full disk must not blind the console
            log.exception("journal append failed; event published unjournaled")
            stored = event
        self._events_total += 1
        if stored.service in self.services:
            self._dirty.add(stored.service)  # its snapshot shows breaker, recovery, heartbeat, alerts
        for listener in list(self.listeners):
            try:
                listener(stored)
            except Exception:  # noqa: BLE001
                log.exception("event listener failed")
        if isinstance(stored, AlertEvent):
            self._alerts_dirty = True
        else:
            self.alert_manager.observe(stored)
        return stored

    def _emit_alert(self, event: AlertEvent) -> None:
        stored = self.publish(event)
        self._log_sink(stored)  # type: ignore[arg-type]
        if not isinstance(stored, AlertEvent):
            return
        if self._webhook is not None:
            self._webhook.submit(stored)
        if self.notifier is not None:
            self.notifier.on_alert(stored, self._alert_context(stored))

    def _alert_context(self, event: AlertEvent) -> AlertContext:
        """What a notification says beyond the alert: the device, since when, what recovery does."""
        svc = self.services.get(event.service)
        if svc is None:
            return AlertContext(device=event.group or event.service)
        cfg = svc.cfg
        words = recovery_words(svc.recovery.view(), self.clock.wall(),
                               blocked_by=self._blocks.blocked_by(cfg.id) or "",
                               maintenance=self.in_maintenance(cfg.id, cfg.group),
                               auto_restart=cfg.recovery.auto_restart, has_restart=cfg.restart is not None)
        # The alert manager already knows both: no copy of every alert, no second count of the blocked.
        return AlertContext(device=cfg.name, since_wall=self.alert_manager.first_wall(event.alert_id),
                            recovery=words, affects=self.alert_manager.affected_count(cfg.id))

    def _make_notifier(self, config: Config) -> Notifier | None:
        if not config.notify:
            return None
        return Notifier(config.notify, self.clock, self.publish, self._service_infos(config))

    @staticmethod
    def _service_infos(config: Config) -> dict[str, ServiceInfo]:
        return {s.id: ServiceInfo(s.name, s.group, s.tags) for s in config.services}

    # ------------------------------------------------------------------ dependencies

    def _set_settle(self, config: Config) -> None:
        """Children wait about one check of their slowest parent before their faults count: devices
        behind a switch are often checked a moment before the switch itself."""
        by_id = {s.id: s for s in config.services}
        self._has_dependencies = any(s.depends_on for s in config.services)
        self._settle_s = {
            s.id: max(_detection_s(by_id[p]) for p in s.depends_on if p in by_id)
            for s in config.services if any(p in by_id for p in s.depends_on)}
        self.alert_manager.set_settle(self._settle_s)

    def _is_down(self, service: str) -> bool:
        svc = self.services.get(service)
        if svc is None:
            return False
        mon = svc.monitor
        return mon.failed or mon.breaker.state.blocks_calls

    def _update_blocks(self) -> None:
        """Children of a down parent are blocked: held alerts and restarts; released ones judged afresh."""
        change = self._blocks.update(self._is_down)
        if not change:
            return
        for sid in change.released:
            # Judged afresh: its failures were its parent's. Its own next checks decide, not old evidence
            # (restarting ten PLCs the moment their switch is back is the storm this prevents).
            svc = self.services.get(sid)
            if svc is not None:
                svc.monitor.consecutive_failures = 0
                svc.monitor.failed = False
                if svc.monitor.breaker.state in (BreakerState.OPEN, BreakerState.HALF_OPEN):
                    svc.monitor.breaker.reset("its parent is back: judged afresh")
        self.alert_manager.set_blocked(self._blocks.blocked)
        for sid, parent in change.blocked.items():
            # Power-cycling twenty PLCs because their switch died is the storm this product prevents.
            self.recovery.cancel(sid, f"blocked by {parent}")
            self._dirty.add(sid)
            log.info("%s: blocked by %s", sid, parent)
        for sid in change.released:
            self._dirty.add(sid)
        for parent in {*change.blocked.values()}:
            self._dirty.add(parent)

    def blocked_by(self, service: str) -> str | None:
        return self._blocks.blocked_by(service)

    def changed(self, service: str) -> None:
        self._dirty.add(service)

    def breaker_changed(self, event: BreakerEvent) -> None:
        parent = self._blocks.blocked_by(event.service)
        if parent is not None:
            event = dataclasses.replace(event, blocked_by=parent)
        self.publish(event)
        if event.to_state is BreakerState.OPEN:
            self._timed.add(event.service)
        else:
            self._timed.discard(event.service)
        key = f"breaker:{event.service}"
        if event.to_state.forced:
            self.journal.save_state(key, event.to_state.value)
        elif event.from_state.forced:
            self.journal.delete_state(key)

    def service_failed(self, service: str, failure_type: FailureType) -> None:
        svc = self.services.get(service)
        if svc is None:
            return
        self._update_blocks()  # a parent failing in this very check blocks its children first
        held = self.in_maintenance(service, svc.cfg.group) or self._blocks.blocked_by(service) is not None
        wait = self._settle_s.get(service)
        if wait and not held:
            # A child checked more often than its parent waits one parent detection before recovery.
            self._spawn(self._recover_after_settle(service, failure_type, wait))
            return
        self._spawn(self.recovery.on_failed(service, failure_type, held))

    async def _recover_after_settle(self, service: str, failure_type: FailureType, wait: float) -> None:
        await self.clock.sleep(wait)
        self._update_blocks()
        svc = self.services.get(service)
        if svc is None or not svc.monitor.failed or self.recovery.active(service):
            return
        if self.in_maintenance(service, svc.cfg.group) or self._blocks.blocked_by(service) is not None:
            return
        await self.recovery.on_failed(service, failure_type, False)

    def _on_storm(self, service: str, key: str, reason: str) -> None:
        """`key` is what tripped: the service itself, or "group:<name>" for its whole group."""
        self.journal.save_state(f"storm:{key}", reason)
        self.alert_manager.raise_alert("storm_guard", service, AlertSeverity.CRITICAL,
                                       f"automatic restarts stopped ({reason}); reset to re-enable")

    # ------------------------------------------------------------------ recovery plumbing

    def _slot(self, service: str) -> RecoverySlot | None:
        svc = self.services.get(service)
        return svc.recovery if svc is not None else None

    def _restart_wait(self, service: str) -> float:
        svc = self.services.get(service)
        return svc.restart_bucket.time_until() if svc is not None else 0.0

    def _take_restart(self, service: str) -> None:
        svc = self.services.get(service)
        if svc is not None:
            svc.restart_bucket.try_acquire()

    def _recovery_target(self, service: str) -> RecoveryTarget | None:
        svc = self.services.get(service)
        if svc is None:
            return None
        cfg = svc.cfg
        return RecoveryTarget(service, cfg.group, cfg.recovery, cfg.restart is not None,
                              bool(cfg.backup_endpoints), svc.monitor.active_index == 0)

    async def _run_restart(self, service: str) -> ActionResult:
        svc = self.services.get(service)
        if svc is None or svc.cfg.restart is None:
            return ActionResult(False, "no restart action", 0.0)
        log.info("%s: restart via %s", service, describe_action(svc.cfg.restart))
        return await self._run_action(svc.cfg.restart, svc.cfg.recovery.restart_timeout_seconds)

    async def _run_failover(self, service: str) -> str | None:
        """Move the service to its first healthy backup endpoint; returns it, or None."""
        svc = self.services.get(service)
        if svc is None:
            return None
        for index, url in enumerate(svc.cfg.backup_endpoints, start=1):
            result = await svc.monitor.probe(url)
            if result.ok:
                svc.monitor.switch_endpoint(index, f"failover to backup {index}")
                return url
        return None

    # ------------------------------------------------------------------ time

    async def _ticker(self) -> None:
        last_flush = last_prune = self.clock.monotonic()
        expected = time.monotonic() + TICK_S
        while True:
            await self.clock.sleep(TICK_S)
            self._lags.append(max(0.0, time.monotonic() - expected) * 1000.0)
            try:
                self._tick()
                now = self.clock.monotonic()
                if now - last_flush >= FLUSH_EVERY_S:
                    last_flush = now
                    self.journal.flush()
                    self._checks_window.append((now, self.checks_total))
                if now - last_prune >= PRUNE_EVERY_S:
                    last_prune = now
                    self.journal.prune()
            except Exception:  # noqa: BLE001 - the ticker must survive a bad tick
                log.exception("engine tick failed")
            # After the tick's own work: lag is how late the loop wakes us, not how long we worked.
            expected = time.monotonic() + TICK_S

    def _tick(self) -> None:
        """What is due now, and only that: the cost follows the services that have something going on."""
        now = self.clock.monotonic()
        for sid in list(self._timed):
            svc = self.services.get(sid)
            due = svc.monitor.breaker.next_transition_at() if svc is not None else None
            if due is None:
                self._timed.discard(sid)
            elif now >= due:
                svc.monitor.breaker.poll()  # type: ignore[union-attr]  # due is set only for a known service
        deadline = self.heartbeat.next_deadline()
        if deadline is not None and now >= deadline:
            for hb in self.heartbeat.poll():
                self.publish(hb)
        if self._dirty and self._has_dependencies:
            self._update_blocks()
        self.alert_manager.poll()
        if self.notifier is not None:
            self.notifier.poll()
        self._expire_maintenance()
        self._follow_schedule()
        self.refresh_views()

    def refresh_views(self) -> None:
        """Publish new snapshots for what changed; readers on other threads swap references only."""
        # Only what changed or shows a countdown is rebuilt: O(changed), not O(fleet), per tick. New
        # services are dirty from the start; dropped ones leave the published dict here.
        stale = self._dirty | self._timed | self.recovery.recovering()
        if stale or self._removed:
            views = dict(self._snapshots)
            for sid in self._removed:
                views.pop(sid, None)
            self._removed.clear()
            for sid in stale:
                svc = self.services.get(sid)
                if svc is not None:
                    views[sid] = self._project(svc)
            self._dirty.clear()
            self._snapshots = views
        if self._alerts_dirty:
            self._alerts_dirty = False
            self._alert_views = self.alert_manager.alerts()

    def _project(self, svc: Service) -> ServiceSnapshot:
        cfg = svc.cfg
        return project(svc, heartbeat=self.heartbeat.status(cfg.id), blocked_by=self._blocks.blocked_by(cfg.id) or "",
                       storm_tripped=self.recovery.storm.blocked(cfg.id, cfg.group) is not None,
                       maintenance_until=self.maintenance_of(cfg.id, cfg.group))

    # ------------------------------------------------------------------ reads (thread-safe)

    def snapshots(self) -> dict[str, ServiceSnapshot]:
        return self._snapshots

    def alerts(self) -> list[AlertView]:
        return self._alert_views

    def stats(self) -> EngineStats:
        window = list(self._checks_window)
        rate = 0.0
        if len(window) >= 2 and window[-1][0] > window[0][0]:
            rate = (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0])
        lags = sorted(self._lags)
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))] if lags else 0.0
        return EngineStats(self.checks_total, rate, p99, len(self.services), self._events_total)

    # ------------------------------------------------------------------ maintenance (its one owner)

    def maintenance_of(self, service: str, group: str) -> tuple[bool, float | None]:
        svc = self.services.get(service)
        for m in (svc.maintenance if svc is not None else None, self._group_maintenance.get(group)):
            if m is not None:
                return True, m.until_wall
        if not self._windows_open:
            return False, None  # the usual case, once per snapshot: no scheduled window to match
        windows = self._schedule.covering(service, group, svc.cfg.tags if svc is not None else ())
        if windows:
            return True, max(w.end_wall for w in windows)
        return False, None

    def maintenance_windows(self, horizon_s: float = 7 * 86400.0) -> tuple[list[object], list[object]]:
        """(open, upcoming) scheduled windows, for the GUI and the API."""
        return (list(self._schedule.open_windows),
                list(self._schedule.schedule.upcoming(self.clock.wall(), horizon_s)))

    async def scheduled_maintenance(self, horizon_s: float = 7 * 86400.0) -> list[MaintenanceWindowView]:
        """EngineControl: open and upcoming windows with the services they cover (core/maintenance_board.py)."""
        return board(self, horizon_s)

    def _follow_schedule(self) -> None:
        """`[[maintenance]]` windows open and close on their own; each start and end is journaled."""
        if not len(self._schedule.schedule):
            return
        change = self._schedule.update(self.clock.wall())
        self._windows_open = bool(self._schedule.open_windows)
        if not change:
            return
        self.alert_manager.maintenance_changed()
        for window in change.started:
            for s in self.services.values():
                if window.covers(s.id, s.cfg.group, s.cfg.tags):
                    self.recovery.cancel(s.id, f"maintenance window {window.name} started")
                    self._dirty.add(s.id)
            self._action("maintenance_window_start", "", "schedule", True,
                         f"{window.name}: {window.describe()} until {iso_utc(window.end_wall)}")
        for window in change.ended:
            for s in self.services.values():
                if window.covers(s.id, s.cfg.group, s.cfg.tags):
                    self._dirty.add(s.id)
                    if s.monitor.failed and not self.in_maintenance(s.id, s.cfg.group):
                        self.service_failed(s.id, s.monitor.last_failure_type)
            self._action("maintenance_window_end", "", "schedule", True, f"{window.name}: {window.describe()}")

    def in_maintenance(self, service: str, group: str) -> bool:
        return self.maintenance_of(service, group)[0]

    def _target_in_maintenance(self, target: str) -> bool:
        """For the alert manager: is this service, or this group, in maintenance by itself."""
        svc = self.services.get(target)
        if svc is not None:
            return svc.maintenance is not None or bool(self._schedule.covering(target, "", svc.cfg.tags))
        return target in self._group_maintenance or self._schedule.group_open(target)

    def _expire_maintenance(self) -> None:
        now = self.clock.monotonic()
        ended = [t for t, m in self._group_maintenance.items() if m.over(now)]
        for sid in list(self._maintained):
            m = self.services[sid].maintenance if sid in self.services else None
            if m is None:
                self._maintained.discard(sid)
            elif m.over(now):
                ended.append(sid)
        for target in ended:
            self._set_maintenance(target, False, "engine", None, "maintenance window ended")

    def _set_maintenance(self, target: str, on: bool, origin: str, until_wall: float | None,
                         detail: str = "") -> None:
        svc = self.services.get(target)
        if on:
            m = Maintenance.ending(until_wall, self.clock.wall(), self.clock.monotonic())
            if svc is not None:
                svc.maintenance = m
                self._maintained.add(target)
            else:
                self._group_maintenance[target] = m
            self.journal.save_state(f"maint:{target}", {"until": until_wall})
        else:
            if svc is not None:
                svc.maintenance = None
            else:
                self._group_maintenance.pop(target, None)
            self.journal.delete_state(f"maint:{target}")
        self.alert_manager.maintenance_changed()
        for s in self.services.values():
            if target in (s.id, s.cfg.group):
                if on:
                    # A lab breaking devices on purpose must not have them restarted under its hands.
                    self.recovery.cancel(s.id, "maintenance started")
                self._dirty.add(s.id)
        self._action("maintenance_on" if on else "maintenance_off", target, origin, True,
                     detail or (f"until {iso_utc(until_wall)}" if until_wall else ""))

    # ------------------------------------------------------------------ commands

    def _action(self, command: str, service: str, origin: str, ok: bool, detail: str = "") -> None:
        self.publish(ActionEvent(service=service, mono=self.clock.monotonic(), wall=self.clock.wall(),
                                 command=command, origin=origin, ok=ok, detail=detail))

    def _each(self, service_ids: Sequence[str], command: str, origin: str,
              fn: Callable[[Service], str]) -> CommandResult:
        done: list[str] = []
        unknown = [s for s in service_ids if s not in self.services]
        for sid in service_ids:
            svc = self.services.get(sid)
            if svc is None:
                continue
            detail = fn(svc)
            self._action(command, sid, origin, True, detail)
            done.append(sid)
        self.refresh_views()
        if unknown:
            return CommandResult(False, f"unknown service(s): {', '.join(unknown)}")
        if not done:
            return CommandResult(False, "no service selected")
        names = ", ".join(self.services[s].cfg.name for s in done[:3]) + (
            f" and {len(done) - 3} more" if len(done) > 3 else "")
        return CommandResult(True, f"{command.replace('_', ' ')}: {names}")

    async def force_open(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        def go(svc: Service) -> str:
            svc.monitor.breaker.force_open(f"forced open by {origin}")
            return ""
        return self._each(service_ids, "force_open", origin, go)

    async def force_close(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        def go(svc: Service) -> str:
            svc.monitor.breaker.force_close(f"forced closed by {origin}")
            return ""
        return self._each(service_ids, "force_close", origin, go)

    async def reset(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        def go(svc: Service) -> str:
            mon = svc.monitor
            mon.breaker.reset(f"reset by {origin}")
            sid, group = svc.id, svc.cfg.group
            cleared = self.recovery.reset(sid, group)
            self.journal.delete_state(f"storm:{sid}")
            self.journal.delete_state(f"storm:group:{group}")
            self.alert_manager.resolve("storm_guard", sid)
            if mon.failed and not self.recovery.active(sid):
                # Still failing: hand it to recovery again, or automatic restarts would never resume
                # (recovery starts on the change to failed, which already happened).
                self.service_failed(sid, mon.last_failure_type)
            return "storm guard cleared" if cleared else ""
        return self._each(service_ids, "reset", origin, go)

    async def restart(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        messages: list[str] = []
        ok = True
        for sid in service_ids:
            svc = self.services.get(sid)
            if svc is None:
                ok = False
                messages.append(f"unknown service '{sid}'")
                continue
            if svc.cfg.restart is None:
                ok = False
                msg = f"{svc.cfg.name} has no restart action configured"
                self._action("restart", sid, origin, False, msg)
                messages.append(msg)
                continue
            wait = svc.restart_bucket.time_until()
            if wait > 0:
                ok = False
                msg = f"{svc.cfg.name}: rate limited, next restart allowed in {wait:.0f} s"
                self._action("restart", sid, origin, False, msg)
                messages.append(msg)
                continue
            msg = await self.recovery.restart_now(sid)
            self._action("restart", sid, origin, True, msg)
            messages.append(msg)
        self.refresh_views()
        return CommandResult(ok, "; ".join(messages) or "no service selected")

    async def pause(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        def go(svc: Service) -> str:
            svc.monitor.set_paused(True)
            self.journal.save_state(f"paused:{svc.id}", True)
            return ""
        return self._each(service_ids, "pause", origin, go)

    async def resume(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        def go(svc: Service) -> str:
            svc.monitor.set_paused(False)
            self.journal.delete_state(f"paused:{svc.id}")
            return ""
        return self._each(service_ids, "resume", origin, go)

    async def acknowledge(self, alert_ids: Sequence[str], origin: str) -> CommandResult:
        done = [a for a in alert_ids if self.alert_manager.acknowledge(a)]
        for a in done:
            self._action("acknowledge", "", origin, True, a)
        self.refresh_views()
        return CommandResult(bool(done), f"acknowledged {len(done)} alert(s)")

    async def silence(self, alert_ids: Sequence[str], seconds: float, origin: str) -> CommandResult:
        done = [a for a in alert_ids if self.alert_manager.silence(a, seconds)]
        for a in done:
            self._action("silence", "", origin, True, f"{a} for {seconds:g} s")
        self.refresh_views()
        return CommandResult(bool(done), f"silenced {len(done)} alert(s) for {seconds / 60:g} min")

    async def maintenance(self, targets: Sequence[str], on: bool, origin: str,
                          until_wall: float | None = None) -> CommandResult:
        groups = {s.cfg.group for s in self.services.values()}
        unknown = [t for t in targets if t not in self.services and t not in groups]
        if unknown:
            return CommandResult(False, f"unknown service or group: {', '.join(unknown)}")
        if on and until_wall is None:
            until_wall = self.clock.wall() + self.config.alerts.maintenance_default_hours * 3600.0
        for t in targets:
            self._set_maintenance(t, on, origin, until_wall if on else None)
        self.refresh_views()
        ends = f" until {iso_utc(until_wall)[11:16]} UTC" if on and until_wall else ""
        return CommandResult(True, f"maintenance {'on' if on else 'off'}: {', '.join(targets)}{ends}")

    async def reload(self, path: str, origin: str, *, edit: str = "", service: str = "") -> CommandResult:
        """Load `path` and apply it. `edit` names a console edit ("added plc-3"): then the journal gets
        one `config_edit` action for it instead of a plain `reload`."""
        command = "config_edit" if edit else "reload"
        try:
            new = load_config(path)
        except ConfigError as exc:
            self._action(command, service, origin, False, f"{edit}; not applied: {exc}" if edit else str(exc))
            return CommandResult(False, str(exc))
        summary = await self.apply_config(new)
        self._action(command, service, origin, True, edit or summary)
        return CommandResult(True, f"config reloaded: {summary}")

    async def apply_config(self, new: Config) -> str:
        """Live reconfiguration: added services start, removed ones go whole, changed ones adapt."""
        old_ids = set(self.services)
        new_ids = {s.id for s in new.services}
        for gone in {s.group for s in self.config.services} - {s.group for s in new.services}:
            self._group_limiter.forget(gone)
            self._group_maintenance.pop(gone, None)
        self.config = new
        for sid in old_ids - new_ids:
            await self._drop(sid)
        for cfg in new.services:
            svc = self.services.get(cfg.id)
            if svc is None:
                continue
            old = svc.cfg
            # Protocol checks take their library timeout from timeout_seconds when they are made.
            check_changed = (cfg.check, cfg.health_path, cfg.tls_verify, cfg.ca_bundle,
                             cfg.fault_detection.max_body_bytes, cfg.fault_detection.timeout_seconds) != (
                old.check, old.health_path, old.tls_verify, old.ca_bundle, old.fault_detection.max_body_bytes,
                old.fault_detection.timeout_seconds)
            new_check = self._make_check(cfg) if check_changed else None
            old_check = svc.monitor.check
            svc.monitor.reconfigure(cfg, new.anomaly, new_check)
            if new_check is not None:
                await old_check.close()
            svc.recovery.reconfigure(cfg.recovery)
            svc.restart_bucket.set_rate(*per_minute(new.rate_limit.restarts_per_service_per_minute))
            self.heartbeat.configure(cfg.id, cfg.heartbeat_interval_seconds)
            self._dirty.add(cfg.id)
        for cfg in new.services:
            if cfg.id not in old_ids:
                self._add(cfg)
        self.wake_grid_s = self._wake_grid(new)
        for svc in self.services.values():
            svc.monitor.wake_grid_s = self.wake_grid_s
        self.heartbeat.set_config(new.heartbeat)
        self._blocks = BlockTracker(DependencyGraph({s.id: s.depends_on for s in new.services}))
        self._set_settle(new)
        self.alert_manager.set_blocked({})
        self._update_blocks()
        self._schedule = ScheduleTracker(MaintenanceSchedule(new.maintenance))
        self._windows_open = False
        self.alert_manager.maintenance_changed()
        if self.notifier is None or self.notifier.channels != new.notify:
            if self.notifier is not None:
                self.notifier.close()
            self.notifier = self._make_notifier(new)
            if self.notifier is not None and self._running:
                self._spawn(self.notifier.run())
        elif self.notifier is not None:
            self.notifier.set_services(self._service_infos(new))
        self.alert_manager.set_config(new.alerts)
        self.alert_manager.set_groups(self._group_map(new))
        rl = new.rate_limit
        self.check_limiter.set_rate(rl.checks_per_second, rl.checks_burst)
        self._group_limiter.set_rate(*per_minute(rl.restarts_per_group_per_minute))
        self.refresh_views()
        added, removed = len(new_ids - old_ids), len(old_ids - new_ids)
        return f"{len(new_ids)} services ({added} added, {removed} removed)"

    # ------------------------------------------------------------------ heartbeats and history

    def beat(self, service: str) -> bool:
        """A device's heartbeat arrived (from the API listener)."""
        if not self.heartbeat.knows(service):
            return False
        event: HeartbeatEvent | None = self.heartbeat.beat(service)
        if event is not None:
            self.publish(event)
        return True

    async def latency_history(self, service_id: str, since_wall: float,
                              rollup: bool = False) -> list[tuple[float, float | None]]:
        if rollup:
            return [(r.minute_wall, r.mean_ms) for r in self.journal.latency_rollup(service_id, since_wall)]
        return self.journal.latency(service_id, since_wall)

    async def value_history(self, service_id: str, since_wall: float,
                            rollup: bool = False) -> list[tuple[float, float]]:
        """Numeric values a service's check read: raw, or per-minute means for long ranges."""
        if rollup:
            return [(r.minute_wall, r.mean) for r in self.journal.value_rollup(service_id, since_wall)]
        return self.journal.values(service_id, since_wall)

    async def journal_events(self, service_id: str | None = None, limit: int = 1000) -> list[Event]:
        return self.journal.events(service=service_id, limit=limit, newest_first=True)

    @property
    def config_path(self) -> str | None:
        return self.config.source or None

    def alert_sound(self) -> bool:
        return self.config.alerts.sound

    def drain_events(self) -> list[Event]:
        """Events are pushed to `listeners`; an in-process engine has no queue to drain."""
        return []

    @staticmethod
    def _wake_grid(config: Config) -> float:
        """The fleet's check wake-up grid (core.monitor.wake_grid_s), from the checks/s it asks for."""
        return wake_grid_s(sum(1.0 / s.fault_detection.check_interval_seconds for s in config.services))

    @staticmethod
    def _group_map(config: Config) -> dict[str, str]:
        return {s.id: s.group for s in config.services}


def _detection_s(parent: ServiceConfig) -> float:
    """The longest a parent can take to count as down after its child's first failure: its checks may
    lag the child's by one interval, it needs max_failures (or its breaker's threshold) of them, and
    the last may take the whole timeout."""
    fd = parent.fault_detection
    needed = min(fd.max_failures, parent.circuit_breaker.failure_threshold)
    return needed * fd.check_interval_seconds + fd.timeout_seconds


def _log_task_error(task: "asyncio.Task[object]") -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task failed", exc_info=task.exception())
