"""An in-memory EngineControl for GUI tests: a small rack of services, commands that change
snapshots and publish events like the real engine does, and a record of every call.

It makes no fault-tolerance decisions beyond what a command literally says (force open sets the
breaker to FORCED_OPEN, and so on); its clock stands still unless a test moves it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from typing import Any, Sequence

from core.events import (HeartbeatStatus, RecoveryState, RecoveryStrategyName, ActionEvent, AlertEvent, BreakerEvent, BreakerState, Event, ProbeEvent, RecoveryEvent,
                         RecoveryOutcome, ServiceStatus)
from core.maintenance_board import MaintenanceWindowView
from core.snapshot import AlertView, BreakerView, CommandResult, EngineStats, RecoveryView, ServiceSnapshot

START_WALL = 1_780_000_000.0


def make_breaker(state: BreakerState = BreakerState.CLOSED, **kw: Any) -> BreakerView:
    base: dict[str, Any] = dict(state=state, consecutive_failures=0, half_open_in_flight=0, half_open_max_calls=1,
                                half_open_successes=0, success_threshold=3, failure_threshold=5, reopen_in_s=None)
    base.update(kw)
    return BreakerView(**base)


def make_snapshot(sid: str, name: str | None = None, group: str = "rack-a", *, wall: float = START_WALL,
                  **overrides: Any) -> ServiceSnapshot:
    """A healthy, checked-just-now snapshot; override any field."""
    base: dict[str, Any] = dict(
        id=sid, name=name or sid, group=group,
        endpoint=f"http://10.0.0.{abs(hash(sid)) % 200 + 2}:8080", active_endpoint="",
        active_endpoint_index=0, status=ServiceStatus.HEALTHY, failed=False, consecutive_failures=0,
        last_latency_ms=21.0, p50_ms=20.0, p95_ms=34.0, last_check_wall=wall - 2, last_ok_wall=wall - 2,
        last_error=None, stale=False, breaker=make_breaker(), recovery=None, paused=False, maintenance=False,
        maintenance_until_wall=None, heartbeat=HeartbeatStatus.NONE, storm_tripped=False, slow_threshold_ms=1000.0,
        timeout_ms=5000.0, check_interval_s=5.0, restart_action="", checks_total=1200, restarts_total=0,
        latencies_ms=(18.0, 22.0, 19.0, 25.0, 21.0, 20.0, 23.0, 19.0, 34.0, 21.0),
    )
    base.update(overrides)
    if not base["active_endpoint"]:
        base["active_endpoint"] = base["endpoint"]
    return ServiceSnapshot(**base)


def demo_rack(wall: float = START_WALL) -> dict[str, ServiceSnapshot]:
    """A rack with one of each interesting state (most rows healthy, as in real life)."""
    snaps = [
        make_snapshot("plc-1", "PLC line 1", "rack-a", wall=wall, restart_action="POST http://10.0.1.11/restart"),
        make_snapshot("plc-2", "PLC line 2", "rack-a", wall=wall, restart_action="POST http://10.0.1.12/restart"),
        make_snapshot("conv-1", "Conveyor 1", "rack-a", wall=wall, last_latency_ms=44.0, p50_ms=41.0, p95_ms=58.0),
        make_snapshot("conv-2", "Conveyor 2", "rack-a", wall=wall),
        make_snapshot("pump-1", "Pump 1", "rack-b", wall=wall, status=ServiceStatus.DEGRADED,
                      last_latency_ms=1480.0, p50_ms=1210.0, p95_ms=1730.0,
                      latencies_ms=(300.0, 420.0, 800.0, 1100.0, 1250.0, 1310.0, 1480.0, 1190.0, 1520.0, 1480.0)),
        make_snapshot("pump-2", "Pump 2", "rack-b", wall=wall),
        make_snapshot("chiller", "Chiller", "rack-b", wall=wall, status=ServiceStatus.UNHEALTHY, failed=True,
                      consecutive_failures=6, last_latency_ms=None, stale=True, last_ok_wall=wall - 42,
                      last_error="connect timeout after 5000 ms",
                      restart_action="POST http://10.0.2.30/restart",
                      breaker=make_breaker(BreakerState.OPEN, consecutive_failures=6, reopen_in_s=38.0),
                      recovery=RecoveryView("rec-1", RecoveryStrategyName("restart"), RecoveryState("waiting"), 2, 3, wall + 4,
                                            "backoff 4 s (exponential)"),
                      latencies_ms=(22.0, 25.0, 31.0, 240.0, 5000.0, 5000.0, 5000.0)),
        make_snapshot("comp", "Compressor", "rack-b", wall=wall, status=ServiceStatus.UNHEALTHY, failed=True,
                      consecutive_failures=4, last_latency_ms=None, stale=True, last_ok_wall=wall - 95,
                      last_error="HTTP 503 Service Unavailable",
                      breaker=make_breaker(BreakerState.OPEN, consecutive_failures=5, reopen_in_s=21.0),
                      latencies_ms=(31.0, 29.0, 35.0, 33.0, 5000.0, 5000.0, 5000.0, 5000.0)),
        make_snapshot("cam-1", "Camera 1", "rack-c", wall=wall,
                      breaker=make_breaker(BreakerState.FORCED_OPEN)),
        make_snapshot("cam-2", "Camera 2", "rack-c", wall=wall, maintenance=True,
                      maintenance_until_wall=wall + 3600),
        make_snapshot("gw", "Gateway", "rack-c", wall=wall, active_endpoint_index=1,
                      active_endpoint="http://10.0.3.9:8080",
                      recovery=RecoveryView("rec-2", RecoveryStrategyName("failover"), RecoveryState("succeeded"), 1, 1, None, "primary unreachable")),
        make_snapshot("hub", "Sensor hub", "rack-c", wall=wall, paused=True, status=ServiceStatus.UNKNOWN),
        make_snapshot("scale", "Weighbridge", "rack-c", wall=wall,
                      breaker=make_breaker(BreakerState.HALF_OPEN, half_open_in_flight=1, half_open_successes=1)),
    ]
    return {s.id: s for s in snaps}


def device_rack(wall: float = START_WALL) -> dict[str, ServiceSnapshot]:
    """Devices that do not speak HTTP, one of each check type, as the check modules report them:
    a value where the type reads one, its recent numeric values, and the check's own detail rows."""
    wave = tuple(41.5 + 0.4 * math.sin(i / 4.0) for i in range(30))
    snaps = [
        make_snapshot("furnace", "Furnace PLC", "rack-d", wall=wall, check_type="modbus",
                      target="modbus 10.1.2.4:502 unit 1 holding 100", endpoint="", value=41.5, values=wave,
                      detail=(("register", "holding 100"), ("bounds", "0 … 80"))),
        make_snapshot("packer", "Packer PLC", "rack-d", wall=wall, check_type="modbus",
                      target="modbus 10.1.2.5:502 unit 2 input 7", endpoint="", value=1520, values=(1520.0,) * 12,
                      status=ServiceStatus.UNHEALTHY, failed=True, consecutive_failures=3, stale=True,
                      last_error="input 7 stayed at 1520 for 3 checks (must_change)",
                      detail=(("register", "input 7"), ("must change", "yes"))),
        make_snapshot("ups", "UPS battery", "rack-d", wall=wall, check_type="snmp",
                      target="snmp 10.1.2.6:161 1.3.6.1.4.1.318.1.1.1.2.2.1.0", endpoint="", value=97,
                      values=tuple(100.0 - i * 0.1 for i in range(30)), last_reboot_wall=wall - 600,
                      detail=(("OID", "1.3.6.1.4.1.318.1.1.1.2.2.1.0"), ("OID value", "97"))),
        make_snapshot("panel", "HMI panel", "rack-d", wall=wall, check_type="tls", status=ServiceStatus.DEGRADED,
                      target="tls 10.1.2.9:443", endpoint="", value=12, values=(13.0, 13.0, 12.0),
                      last_error="certificate expires in 12 days (warn at 21)",
                      detail=(("days left", "12"), ("expires", "2026-12-12 08:00 UTC"), ("subject", "CN=panel.lab"))),
        make_snapshot("line-sensor", "Line sensor", "rack-e", wall=wall, check_type="mqtt",
                      target="mqtt 10.1.2.6:1883 lab/plc1/status", endpoint="", value="online",
                      detail=(("topic", "lab/plc1/status"), ("last message", "4 s ago"),
                              ("broker", "mqtt://10.1.2.6:1883 connected"))),
        make_snapshot("filler", "Filler OPC UA", "rack-e", wall=wall, check_type="opcua",
                      target="opcua opc.tcp://10.1.2.7:4840 i=2259", endpoint="", value=0, values=(0.0,) * 20,
                      detail=(("node", "i=2259"), ("equals", "0"))),
        make_snapshot("camera-rtsp", "Camera RTSP", "rack-e", wall=wall, check_type="tcp",
                      target="tcp 10.1.2.3:554", endpoint=""),
        make_snapshot("switch", "Core switch", "rack-e", wall=wall, check_type="ping", target="ping 10.1.2.1",
                      endpoint="", last_latency_ms=0.4, p50_ms=0.4, p95_ms=0.6),
        make_snapshot("resolver", "Resolver", "rack-e", wall=wall, check_type="dns",
                      target="dns 10.1.2.1 plc1.lab A", endpoint="", value="10.1.2.3",
                      detail=(("answer", "10.1.2.3"),)),
    ]
    return {s.id: s for s in snaps}


class FakeEngine:
    """EngineControl in memory.

    Attributes:
        calls: (command, args...) tuples, in call order.
        wall: the fake wall clock (seconds); `now()` reads it.
        restart_gate: when set to an asyncio.Event, restart() waits for it (to observe progress).
        config: None (the real EngineThread has a Config here).
        config_path: the config file in use, None by default.
        reload_refusal: when set, reload() refuses with this message.
        maintenance_board: what scheduled_maintenance() answers (windows whose end is past are left out).
        maintenance_error: when set, scheduled_maintenance() raises ConnectionError with it.
    """

    def __init__(self, snapshots: dict[str, ServiceSnapshot] | None = None, *, wall: float = START_WALL) -> None:
        self.wall = wall
        self._snaps: dict[str, ServiceSnapshot] = dict(snapshots if snapshots is not None else demo_rack(wall))
        self._alerts: list[AlertView] = []
        self._pending: list[Event] = []
        self._seq = 0
        self.history: list[Event] = []
        self.calls: list[tuple[Any, ...]] = []
        self.restart_gate: asyncio.Event | None = None
        self.config: Any = None
        self.config_path: str | None = None  # what the window watches for changes (EngineThread: runtime's)
        self.reload_refusal: str | None = None  # set: reload() refuses with this one-line message
        self.started = False
        self.stopped = False
        self.maintenance_board: list[MaintenanceWindowView] = []
        self.maintenance_error = ""
        self.stats_value = EngineStats(checks_total=123_456, checks_per_second=412.0, loop_lag_ms=3.0,
                                       services=len(self._snaps), events_total=42)

    # ---- test helpers
    def now(self) -> float:
        return self.wall

    def set_snapshot(self, snap: ServiceSnapshot) -> None:
        self._snaps[snap.id] = snap

    def update(self, sid: str, **changes: Any) -> ServiceSnapshot:
        snap = dataclasses.replace(self._snaps[sid], **changes)
        self._snaps[sid] = snap
        return snap

    def remove(self, sid: str) -> None:
        del self._snaps[sid]

    def publish(self, event: Event) -> Event:
        self._seq += 1
        event = dataclasses.replace(event, seq=self._seq)
        self._pending.append(event)
        self.history.append(event)
        return event

    def add_alert(self, alert_id: str, service: str, severity: str = "critical", message: str = "down",
                  *, acknowledged: bool = False, active: bool = True, age_s: float = 120.0) -> AlertView:
        alert = AlertView(id=alert_id, rule="unhealthy_for", service=service, group="", severity=severity,
                          message=message, active=active, acknowledged=acknowledged, silenced_until_wall=None,
                          first_wall=self.wall - age_s, last_wall=self.wall, count=1)
        self._alerts = [a for a in self._alerts if a.id != alert_id] + [alert]
        return alert

    def _event_kw(self, sid: str) -> dict[str, Any]:
        return {"service": sid, "mono": 0.0, "wall": self.wall}

    def _names(self, ids: Sequence[str]) -> str:
        return ", ".join(self._snaps[i].name for i in ids if i in self._snaps)

    def _set_breaker(self, ids: Sequence[str], state: BreakerState, origin: str, command: str) -> CommandResult:
        for sid in ids:
            snap = self._snaps.get(sid)
            if snap is None:
                continue
            before = snap.breaker.state
            self.update(sid, breaker=dataclasses.replace(snap.breaker, state=state, reopen_in_s=None))
            self.publish(BreakerEvent(from_state=before, to_state=state, reason=f"{command} by {origin}",
                                      **self._event_kw(sid)))
            self.publish(ActionEvent(command=command, origin=origin, **self._event_kw(sid)))
        return CommandResult(True, f"{command.replace('_', ' ')}: {self._names(ids)}")

    # ---- EngineControl: commands
    async def force_open(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        self.calls.append(("force_open", list(service_ids), origin))
        return self._set_breaker(service_ids, BreakerState.FORCED_OPEN, origin, "force_open")

    async def force_close(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        self.calls.append(("force_close", list(service_ids), origin))
        return self._set_breaker(service_ids, BreakerState.FORCED_CLOSED, origin, "force_close")

    async def reset(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        self.calls.append(("reset", list(service_ids), origin))
        return self._set_breaker(service_ids, BreakerState.CLOSED, origin, "reset")

    async def restart(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        self.calls.append(("restart", list(service_ids), origin))
        if self.restart_gate is not None:
            await self.restart_gate.wait()
        for sid in service_ids:
            self.publish(RecoveryEvent(recovery_id=f"manual-{sid}", strategy="restart", attempt=1, max_attempts=1,
                                       outcome=RecoveryOutcome.SUCCEEDED, detail=f"requested by {origin}",
                                       **self._event_kw(sid)))
            self.publish(ActionEvent(command="restart", origin=origin, **self._event_kw(sid)))
        return CommandResult(True, f"restart succeeded: {self._names(service_ids)}")

    async def pause(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        self.calls.append(("pause", list(service_ids), origin))
        for sid in service_ids:
            self.update(sid, paused=True)
        return CommandResult(True, f"paused: {self._names(service_ids)}")

    async def resume(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        self.calls.append(("resume", list(service_ids), origin))
        for sid in service_ids:
            self.update(sid, paused=False)
        return CommandResult(True, f"resumed: {self._names(service_ids)}")

    async def acknowledge(self, alert_ids: Sequence[str], origin: str) -> CommandResult:
        self.calls.append(("acknowledge", list(alert_ids), origin))
        self._alerts = [dataclasses.replace(a, acknowledged=True) if a.id in alert_ids else a for a in self._alerts]
        for a in self._alerts:
            if a.id in alert_ids:
                self.publish(AlertEvent(alert_id=a.id, severity=a.severity, rule=a.rule, state="acknowledged",
                                        message=a.message, **self._event_kw(a.service)))
        return CommandResult(True, f"acknowledged {len(alert_ids)} alert(s)")

    async def maintenance(self, targets: Sequence[str], on: bool, origin: str,
                          until_wall: float | None = None) -> CommandResult:
        self.calls.append(("maintenance", list(targets), on, origin))
        for target in targets:  # a service id or a group name, like the real engine
            for sid in [s.id for s in self._snaps.values() if target in (s.id, s.group)]:
                self.update(sid, maintenance=on, maintenance_until_wall=until_wall if on else None)
        return CommandResult(True, f"maintenance {'on' if on else 'off'}: {self._names(targets)}")

    async def reload(self, path: str, origin: str, *, edit: str = "", service: str = "") -> CommandResult:
        self.calls.append(("reload", path, origin))
        if self.reload_refusal is not None:
            return CommandResult(False, self.reload_refusal)
        if "bad" in path:
            return CommandResult(False, f"{path}: services[0].endpoint: expected an http(s) URL, got 'ftp://x'")
        return CommandResult(True, f"loaded {path}")

    async def config_edit(self, path: str, origin: str, detail: str, service: str = "") -> CommandResult:
        """Like EngineThread.config_edit: reload, then journal the edit as a `config_edit` action."""
        self.calls.append(("config_edit", path, origin, detail, service))
        result = await self.reload(path, origin)
        self.publish(ActionEvent(command="config_edit", origin=origin, ok=result.ok, detail=detail,
                                 **self._event_kw(service)))
        return CommandResult(result.ok, f"config edit: {detail}" if result.ok else result.message)

    async def silence(self, alert_ids: Sequence[str], seconds: float, origin: str) -> CommandResult:
        self.calls.append(("silence", list(alert_ids), seconds, origin))
        self._alerts = [dataclasses.replace(a, silenced_until_wall=self.wall + seconds) if a.id in alert_ids else a
                        for a in self._alerts]
        return CommandResult(True, f"silenced {len(alert_ids)} alert(s) for {seconds:.0f} s")

    async def latency_history(self, service_id: str, since_wall: float,
                              rollup: bool = False) -> list[tuple[float, float | None]]:
        self.calls.append(("latency_history", service_id, since_wall, rollup))
        step = 60.0 if rollup else 5.0
        points: list[tuple[float, float | None]] = []
        t = since_wall
        i = 0
        while t <= self.wall:
            points.append((t, None if i % 37 == 36 else 20.0 + (i * 7) % 15))
            t += step
            i += 1
        return points

    async def value_history(self, service_id: str, since_wall: float,
                            rollup: bool = False) -> list[tuple[float, float]]:
        """A slow wave around the service's last numeric value (none for services that read none)."""
        self.calls.append(("value_history", service_id, since_wall, rollup))
        snap = self._snaps.get(service_id)
        value = snap.value if snap is not None else None
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return []
        step = 60.0 if rollup else 5.0
        points: list[tuple[float, float]] = []
        t = since_wall
        i = 0
        while t <= self.wall:
            # A slow drift with a little noise, like a temperature register.
            points.append((t, float(value) + 0.4 * math.sin(i / 9.0) + ((i * 7) % 5 - 2) * 0.03))
            t += step
            i += 1
        return points

    async def journal_events(self, service_id: str | None = None, limit: int = 1000) -> list[Event]:
        self.calls.append(("journal_events", service_id, limit))
        events = [e for e in self.history if service_id is None or e.service == service_id]
        return events[-limit:]

    async def scheduled_maintenance(self, horizon_s: float = 7 * 86400.0) -> list[MaintenanceWindowView]:
        # A read, polled on the bridge's tick: not in `calls`, which tests index from the end for commands.
        if self.maintenance_error:
            raise ConnectionError(self.maintenance_error)
        return [w for w in self.maintenance_board if w.end_wall > self.wall and w.start_wall - self.wall <= horizon_s]

    # ---- EngineControl: thread-safe reads
    def snapshots(self) -> dict[str, ServiceSnapshot]:
        return dict(self._snaps)

    def stats(self) -> EngineStats:
        return self.stats_value

    def alerts(self) -> list[AlertView]:
        return list(self._alerts)

    def alert_sound(self) -> bool:
        return bool(getattr(getattr(self.config, "alerts", None), "sound", False))

    def drain_events(self) -> list[Event]:
        out, self._pending = self._pending, []
        return out

    # ---- EngineThread-like lifecycle
    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True


def seed_history(engine: FakeEngine) -> None:
    """A few journal events, as if the engine had been running for a while."""
    w = engine.wall
    for offset, event in (
        (300, ProbeEvent(service="chiller", mono=0.0, wall=w - 300, status=ServiceStatus.UNHEALTHY, latency_ms=None,
                         error="connect timeout after 5000 ms", consecutive_failures=1)),
        (250, BreakerEvent(service="chiller", mono=0.0, wall=w - 250, from_state=BreakerState.CLOSED,
                           to_state=BreakerState.OPEN, reason="5 consecutive failures")),
        (120, RecoveryEvent(service="chiller", mono=0.0, wall=w - 120, recovery_id="rec-1", strategy="restart",
                            attempt=1, max_attempts=3, outcome=RecoveryOutcome.FAILED,
                            failure_type="service_unavailable", detail="HTTP 503 from restart endpoint")),
        (60, ProbeEvent(service="pump-1", mono=0.0, wall=w - 60, status=ServiceStatus.DEGRADED, latency_ms=1480.0,
                        error=None, consecutive_failures=0)),
    ):
        del offset
        engine.publish(event)
    engine.drain_events()  # history only: already journaled, not "new"


def with_relations(snap: ServiceSnapshot, *, depends_on: tuple[str, ...] = (), blocked_by: str = "") -> ServiceSnapshot:
    """`snap` with its dependency fields set. Until ServiceSnapshot carries `depends_on`/`blocked_by`
    (the engine wiring of issue 13), a subclass carries them, as the GUI reads them with getattr."""
    names = {f.name for f in dataclasses.fields(ServiceSnapshot)}
    if {"depends_on", "blocked_by"} <= names:
        return dataclasses.replace(snap, depends_on=depends_on, blocked_by=blocked_by)  # type: ignore[call-arg]
    return _Related(**{f.name: getattr(snap, f.name) for f in dataclasses.fields(snap)},
                    depends_on=depends_on, blocked_by=blocked_by)


@dataclasses.dataclass(frozen=True, slots=True)
class _Related(ServiceSnapshot):
    depends_on: tuple[str, ...] = ()
    blocked_by: str = ""
