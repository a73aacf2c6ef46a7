"""Engine: the running fault-tolerance system. Commands in, events out.

It owns the one HTTP session, the journal, a monitor per service, the heartbeat monitor, the alert
manager and the recovery manager, and one ticker task for everything that happens on time (breakers
going half-open by themselves, missed heartbeats, alert timers, maintenance expiry, journal flushes).
Every event is appended to the journal *before* anyone else sees it (`publish`), so no consumer ever
sees an event that a crash then loses. Everything runs on one asyncio loop; nothing here knows Qt.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Sequence

import aiohttp

from core import paths
from core.actions import ActionResult, describe, run_action
from core.checks.base import Check, CheckContext
from core.checks.registry import check_types
from core.alerts import AlertManager, LogSink, WebhookSink
from core.clock import Clock, SystemClock, iso_utc
from core.config import Config, ConfigError, ServiceConfig, load_config
from core.events import (ActionEvent, AlertEvent, BreakerEvent, BreakerState, Event, FailureType,
                         HeartbeatEvent)
from core.heartbeat import HeartbeatMonitor
from core.journal import Journal
from core.monitor import ServiceMonitor
from core.probe import Prober, make_session
from core.ratelimit import KeyedLimiter, TokenBucket, per_minute
from core.recovery import RecoveryManager, RecoveryTarget
from core.snapshot import AlertView, CommandResult, EngineStats, ServiceSnapshot

log = logging.getLogger("core.engine")

TICK_S = 0.25
FLUSH_EVERY_S = 0.25  # small, frequent flushes: at 2,000 checks/s a 1 s batch blocked 22-90 ms
PRUNE_EVERY_S = 60.0  # small, frequent deletes: an hourly prune of a big fleet blocks the loop ~1 s


@dataclass(frozen=True, slots=True)
class _Maintenance:
    until_wall: float | None


class Engine:
    """The fault-tolerance engine for one config.

    Attributes:
        config: the running config (replaced by a successful reload).
        journal: the event journal and latency history.
        listeners: called with every published (journaled) event, in order.
    """

    def __init__(self, config: Config, *, clock: Clock | None = None, state_dir: str | None = None,
                 journal: Journal | None = None, session: aiohttp.ClientSession | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.state_dir = state_dir
        self._journal_given = journal
        self._session_given = session
        self.journal: Journal = journal  # type: ignore[assignment]  # set in start()
        self.session: aiohttp.ClientSession = session  # type: ignore[assignment]
        self.prober: Prober = None  # type: ignore[assignment]
        self.listeners: list[Callable[[Event], None]] = []
        self.monitors: dict[str, ServiceMonitor] = {}
        self.heartbeat = HeartbeatMonitor(self.clock, config.heartbeat)
        self.alert_manager = AlertManager(config.alerts, self.clock, self._group_map(config), self._emit_alert)
        rl = config.rate_limit
        self.check_limiter = TokenBucket(rl.checks_per_second, rl.checks_burst, self.clock)
        self._restart_limiter = KeyedLimiter(*per_minute(rl.restarts_per_service_per_minute), self.clock)
        self._group_limiter = KeyedLimiter(*per_minute(rl.restarts_per_group_per_minute), self.clock)
        self.recovery = RecoveryManager(
            self.clock, self.publish, run_restart=self._run_restart, run_failover=self._run_failover,
            target=self._recovery_target, restart_limiter=self._restart_limiter,
            group_limiter=self._group_limiter, on_storm=self._on_storm)
        self._maintenance: dict[str, _Maintenance] = {}
        self._tasks: list[asyncio.Task[object]] = []
        self._background: set[asyncio.Task[object]] = set()
        self._webhook: WebhookSink | None = None
        self._log_sink = LogSink()
        self._snapshots: dict[str, ServiceSnapshot] = {}
        self._alert_views: list[AlertView] = []
        self._checks_total = 0
        self._checks_window: deque[tuple[float, int]] = deque(maxlen=40)
        self._lags: deque[float] = deque(maxlen=200)
        self._events_total = 0
        self._running = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._journal_given is None:
            path = paths.journal_path(self.config.journal.path, self.state_dir)
            self.journal = Journal.open(path, self.config.journal, self.clock, recover=True)
        if self._session_given is None:
            self.session = make_session()
        self.prober = Prober(self.session)
        self.check_context = CheckContext(self.session)
        self._setup_webhook()
        restored = self._restore_state()
        for svc in self.config.services:
            self._add_monitor(svc.id, restored.get(svc.id, BreakerState.CLOSED))
        self._running = True
        self._tasks.append(asyncio.get_running_loop().create_task(self._ticker(), name="engine:ticker"))
        self.refresh_views()
        log.info("engine started: %d services, journal %s", len(self.monitors), self.journal.path)

    async def stop(self) -> None:
        """Stop checks and recoveries, close the HTTP client, flush and close the journal."""
        if not self._running:
            return
        self._running = False
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await asyncio.gather(*(m.stop() for m in self.monitors.values()), return_exceptions=True)
        await self.recovery.close()
        for t in list(self._background):
            t.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._webhook is not None:
            self._webhook.close()
        await self.check_context.close()
        if self._session_given is None and self.session is not None:
            await self.session.close()
        if self._journal_given is None and self.journal is not None:
            self.journal.close()
        log.info("engine stopped")

    def _add_monitor(self, service_id: str, breaker_state: BreakerState = BreakerState.CLOSED) -> None:
        svc = self.config.service(service_id)
        assert svc is not None
        mon = ServiceMonitor(self, svc, self.config.anomaly, initial_breaker=breaker_state)
        if self.journal.load_state(f"paused:{svc.id}", False):
            mon.paused = True
        self.monitors[svc.id] = mon
        self.heartbeat.configure(svc.id, svc.heartbeat_interval_seconds)
        mon.start()

    def _restore_state(self) -> dict[str, BreakerState]:
        """Forced breakers, maintenance and storm trips survive a restart (and a crash)."""
        forced: dict[str, BreakerState] = {}
        for key, value in self.journal.state_items("breaker:").items():
            try:
                forced[key.split(":", 1)[1]] = BreakerState(value)
            except ValueError:
                pass
        for key, value in self.journal.state_items("maint:").items():
            target = key.split(":", 1)[1]
            until = value.get("until") if isinstance(value, dict) else None
            self._maintenance[target] = _Maintenance(until)
            self.alert_manager.set_maintenance(target, True)
        for key, value in self.journal.state_items("storm:").items():
            self.recovery.storm.tripped[key.split(":", 1)[1]] = str(value)
        return forced

    def _setup_webhook(self) -> None:
        cfg = self.config.alerts
        if cfg.webhook_url:
            token = os.environ.get(cfg.webhook_token_env) if cfg.webhook_token_env else None
            self._webhook = WebhookSink(cfg.webhook_url, self.session, self.clock, cfg.webhook_retries, token)
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
        mon = self.monitors.get(stored.service)
        if mon is not None:
            mon.invalidate()  # its snapshot shows breaker, recovery, heartbeat and alert state
        for listener in list(self.listeners):
            try:
                listener(stored)
            except Exception:  # noqa: BLE001
                log.exception("event listener failed")
        if not isinstance(stored, AlertEvent):
            self.alert_manager.observe(stored)
        return stored

    def _emit_alert(self, event: AlertEvent) -> None:
        stored = self.publish(event)
        self._log_sink(stored)  # type: ignore[arg-type]
        if self._webhook is not None and isinstance(stored, AlertEvent):
            self._webhook.submit(stored)

    def on_breaker_event(self, monitor: ServiceMonitor, event: BreakerEvent) -> None:
        self.publish(event)
        key = f"breaker:{event.service}"
        if event.to_state.forced:
            self.journal.save_state(key, event.to_state.value)
        elif event.from_state.forced:
            self.journal.delete_state(key)

    def on_service_failed(self, monitor: ServiceMonitor, failure_type: FailureType) -> None:
        held = self.in_maintenance(monitor.cfg.id, monitor.cfg.group)
        self._spawn(self.recovery.on_failed(monitor.cfg.id, failure_type, held))

    def _on_storm(self, service: str, key: str, reason: str) -> None:
        """`key` is what tripped: the service itself, or "group:<name>" for its whole group."""
        self.journal.save_state(f"storm:{key}", reason)
        self.alert_manager.raise_alert("storm_guard", service, "critical",
                                f"automatic restarts stopped ({reason}); reset to re-enable")

    def make_check(self, svc: "ServiceConfig") -> Check:
        return check_types()[svc.check_type].make(svc.check, self.check_context, svc)

    def note_check(self) -> None:
        self._checks_total += 1

    def record_latency(self, service: str, wall: float, latency_ms: float | None, ok: bool) -> None:
        self.journal.record_latency(service, wall, latency_ms, ok)

    # ------------------------------------------------------------------ recovery plumbing

    def _recovery_target(self, service: str) -> RecoveryTarget | None:
        mon = self.monitors.get(service)
        if mon is None:
            return None
        cfg = mon.cfg
        return RecoveryTarget(service, cfg.group, cfg.recovery, cfg.restart is not None,
                              bool(cfg.backup_endpoints), mon.active_index == 0)

    async def _run_restart(self, service: str) -> ActionResult:
        mon = self.monitors.get(service)
        if mon is None or mon.cfg.restart is None:
            return ActionResult(False, "no restart action", 0.0)
        log.info("%s: restart via %s", service, describe(mon.cfg.restart))
        return await run_action(mon.cfg.restart, self.check_context, mon.cfg.recovery.restart_timeout_seconds)

    async def _run_failover(self, service: str) -> str | None:
        """Move the service to its first healthy backup endpoint; returns it, or None."""
        mon = self.monitors.get(service)
        if mon is None:
            return None
        fd = mon.cfg.fault_detection
        for index, url in enumerate(mon.cfg.backup_endpoints, start=1):
            result = await self.prober.check(
                url + mon.cfg.health_path, timeout_s=fd.timeout_seconds, slow_ms=fd.slow_response_threshold_ms,
                max_body_bytes=fd.max_body_bytes, tls_verify=mon.cfg.tls_verify, ca_bundle=mon.cfg.ca_bundle)
            if result.ok:
                mon.switch_endpoint(index, f"failover to backup {index}")
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
                    self._checks_window.append((now, self._checks_total))
                if now - last_prune >= PRUNE_EVERY_S:
                    last_prune = now
                    self.journal.prune()
            except Exception:  # noqa: BLE001 - the ticker must survive a bad tick
                log.exception("engine tick failed")
            # After the tick's own work: lag is how late the loop wakes us, not how long we worked.
            expected = time.monotonic() + TICK_S

    def _tick(self) -> None:
        for mon in self.monitors.values():
            mon.breaker.poll()
        for hb in self.heartbeat.poll():
            self.publish(hb)
        self.alert_manager.poll()
        now_wall = self.clock.wall()
        for target, m in list(self._maintenance.items()):
            if m.until_wall is not None and now_wall >= m.until_wall:
                self._set_maintenance(target, False, "engine", None, "maintenance window ended")
        self.refresh_views()

    def refresh_views(self) -> None:
        """Rebuild the published snapshot dict; readers on other threads swap references only."""
        self._snapshots = {sid: mon.snapshot() for sid, mon in self.monitors.items()}
        self._alert_views = self.alert_manager.alerts()

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
        return EngineStats(self._checks_total, rate, p99, len(self.monitors), self._events_total)

    # ------------------------------------------------------------------ maintenance

    def maintenance_of(self, service: str, group: str) -> tuple[bool, float | None]:
        for key in (service, group):
            m = self._maintenance.get(key)
            if m is not None:
                return True, m.until_wall
        return False, None

    def in_maintenance(self, service: str, group: str) -> bool:
        return self.maintenance_of(service, group)[0]

    def _set_maintenance(self, target: str, on: bool, origin: str, until_wall: float | None,
                         detail: str = "") -> None:
        if on:
            self._maintenance[target] = _Maintenance(until_wall)
            self.journal.save_state(f"maint:{target}", {"until": until_wall})
        else:
            self._maintenance.pop(target, None)
            self.journal.delete_state(f"maint:{target}")
        self.alert_manager.set_maintenance(target, on)
        affected = [m for m in self.monitors.values() if target in (m.cfg.id, m.cfg.group)]
        for mon in affected:
            if on:
                # A lab breaking devices on purpose must not have them restarted under its hands.
                self.recovery.cancel(mon.cfg.id, "maintenance started")
            mon.invalidate()
        self._action("maintenance_on" if on else "maintenance_off", target, origin, True,
                     detail or (f"until {iso_utc(until_wall)}" if until_wall else ""))

    # ------------------------------------------------------------------ commands

    def _action(self, command: str, service: str, origin: str, ok: bool, detail: str = "") -> None:
        self.publish(ActionEvent(service=service, mono=self.clock.monotonic(), wall=self.clock.wall(),
                                 command=command, origin=origin, ok=ok, detail=detail))

    def _each(self, service_ids: Sequence[str], command: str, origin: str,
              fn: Callable[[ServiceMonitor], str]) -> CommandResult:
        done: list[str] = []
        unknown = [s for s in service_ids if s not in self.monitors]
        for sid in service_ids:
            mon = self.monitors.get(sid)
            if mon is None:
                continue
            detail = fn(mon)
            self._action(command, sid, origin, True, detail)
            done.append(sid)
        self.refresh_views()
        if unknown:
            return CommandResult(False, f"unknown service(s): {', '.join(unknown)}")
        if not done:
            return CommandResult(False, "no service selected")
        names = ", ".join(self.monitors[s].cfg.name for s in done[:3]) + (
            f" and {len(done) - 3} more" if len(done) > 3 else "")
        return CommandResult(True, f"{command.replace('_', ' ')}: {names}")

    async def force_open(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        def go(mon: ServiceMonitor) -> str:
            mon.breaker.force_open(f"forced open by {origin}")
            return ""
        return self._each(service_ids, "force_open", origin, go)

    async def force_close(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        def go(mon: ServiceMonitor) -> str:
            mon.breaker.force_close(f"forced closed by {origin}")
            return ""
        return self._each(service_ids, "force_close", origin, go)

    async def reset(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        def go(mon: ServiceMonitor) -> str:
            mon.breaker.reset(f"reset by {origin}")
            sid, group = mon.cfg.id, mon.cfg.group
            cleared = self.recovery.reset(sid, group)
            self.journal.delete_state(f"storm:{sid}")
            self.journal.delete_state(f"storm:group:{group}")
            self.alert_manager.resolve("storm_guard", sid)
            if mon.failed and not self.recovery.active(sid):
                # Still failing: hand it to recovery again, or automatic restarts would never resume
                # (recovery starts on the change to failed, which already happened).
                self.on_service_failed(mon, mon.last_failure_type)
            return "storm guard cleared" if cleared else ""
        return self._each(service_ids, "reset", origin, go)

    async def restart(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        messages: list[str] = []
        ok = True
        for sid in service_ids:
            mon = self.monitors.get(sid)
            if mon is None:
                ok = False
                messages.append(f"unknown service '{sid}'")
                continue
            if mon.cfg.restart is None:
                ok = False
                msg = f"{mon.cfg.name} has no restart action configured"
                self._action("restart", sid, origin, False, msg)
                messages.append(msg)
                continue
            wait = self._restart_limiter.time_until(sid)
            if wait > 0:
                ok = False
                msg = f"{mon.cfg.name}: rate limited, next restart allowed in {wait:.0f} s"
                self._action("restart", sid, origin, False, msg)
                messages.append(msg)
                continue
            msg = await self.recovery.restart_now(sid)
            self._action("restart", sid, origin, True, msg)
            messages.append(msg)
        self.refresh_views()
        return CommandResult(ok, "; ".join(messages) or "no service selected")

    async def pause(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        def go(mon: ServiceMonitor) -> str:
            mon.set_paused(True)
            self.journal.save_state(f"paused:{mon.cfg.id}", True)
            return ""
        return self._each(service_ids, "pause", origin, go)

    async def resume(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        def go(mon: ServiceMonitor) -> str:
            mon.set_paused(False)
            self.journal.delete_state(f"paused:{mon.cfg.id}")
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
        groups = {m.cfg.group for m in self.monitors.values()}
        unknown = [t for t in targets if t not in self.monitors and t not in groups]
        if unknown:
            return CommandResult(False, f"unknown service or group: {', '.join(unknown)}")
        if on and until_wall is None:
            until_wall = self.clock.wall() + self.config.alerts.maintenance_default_hours * 3600.0
        for t in targets:
            self._set_maintenance(t, on, origin, until_wall if on else None)
        self.refresh_views()
        ends = f" until {iso_utc(until_wall)[11:16]} UTC" if on and until_wall else ""
        return CommandResult(True, f"maintenance {'on' if on else 'off'}: {', '.join(targets)}{ends}")

    async def reload(self, path: str, origin: str) -> CommandResult:
        try:
            new = load_config(path)
        except ConfigError as exc:
            self._action("reload", "", origin, False, str(exc))
            return CommandResult(False, str(exc))
        summary = await self.apply_config(new)
        self._action("reload", "", origin, True, summary)
        return CommandResult(True, f"config reloaded: {summary}")

    async def apply_config(self, new: Config) -> str:
        """Live reconfiguration: added services start, removed ones stop, changed ones adapt."""
        old_ids = set(self.monitors)
        new_ids = {s.id for s in new.services}
        self.config = new
        for sid in old_ids - new_ids:
            mon = self.monitors.pop(sid)
            self.recovery.cancel(sid, "service removed from config")
            self.heartbeat.configure(sid, None)
            await mon.stop()
        for svc in new.services:
            if svc.id in self.monitors:
                self.monitors[svc.id].reconfigure(svc, new.anomaly)
                self.heartbeat.configure(svc.id, svc.heartbeat_interval_seconds)
        for sid in [s.id for s in new.services if s.id not in old_ids]:
            self._add_monitor(sid)
        self.heartbeat.set_config(new.heartbeat)
        self.alert_manager.set_config(new.alerts)
        self.alert_manager.set_groups(self._group_map(new))
        rl = new.rate_limit
        self.check_limiter.set_rate(rl.checks_per_second, rl.checks_burst)
        self._restart_limiter.set_rate(*per_minute(rl.restarts_per_service_per_minute))
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

    async def journal_events(self, service_id: str | None = None, limit: int = 1000) -> list[Event]:
        return self.journal.events(service=service_id, limit=limit, newest_first=True)

    @staticmethod
    def _group_map(config: Config) -> dict[str, str]:
        return {s.id: s.group for s in config.services}


def _log_task_error(task: "asyncio.Task[object]") -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task failed", exc_info=task.exception())
