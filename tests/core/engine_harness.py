"""A real Engine on a FakeClock with scripted devices: engine behaviour in milliseconds, no sockets.

`FakeFleet` plays the devices: each service's check answers what the test says (healthy, failing,
slow, a value); a restart action is recorded and, by default, heals the device. Everything else is
the production code: breaker, recovery, storm guard, alerts, journal (a real SQLite file), reload.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.actions import ActionResult
from core.checks.base import CheckResult
from core.clock import FakeClock
from core.config import Config, JournalConfig, RestartAction, ServiceConfig, parse_config
from core.engine import Engine
from core.events import Event, FailureType, ServiceStatus
from core.journal import Journal

BASE = """
[fault_detection]
check_interval_seconds = 1
timeout_seconds = 0.5
slow_response_threshold_ms = 200
max_failures = 2
jitter_fraction = 0.0
[circuit_breaker]
failure_threshold = 2
success_threshold = 2
timeout_seconds = 5
[recovery]
restart_base_delay_seconds = 1
restart_max_delay_seconds = 8
verify_checks = 2
verify_timeout_seconds = 10
storm_max_restarts = 3
storm_period_seconds = 600
failback_after_checks = 3
[alerts]
unhealthy_for_seconds = 3
[api]
enabled = false
"""


@dataclass
class FakeDevice:
    """What one endpoint answers. `latency_ms` also applies to failures."""

    healthy: bool = True
    latency_ms: float = 10.0
    error: str = "HTTP 503"
    failure_type: FailureType = FailureType.SERVICE_UNAVAILABLE
    value: float | str | bool | None = None
    reboot: str | None = None
    heal_on_restart: bool = True
    checks: int = 0


@dataclass
class FakeFleet:
    """Devices by endpoint (http) or service id, and every restart the engine asked for."""

    devices: dict[str, FakeDevice] = field(default_factory=dict)
    restarts: list[tuple[float, str]] = field(default_factory=list)
    clock: FakeClock = field(default_factory=lambda: FakeClock(start=0.0))
    made: list[str] = field(default_factory=list)  # service ids a check was made for, in order
    closed: list[str] = field(default_factory=list)

    def device(self, key: str) -> FakeDevice:
        return self.devices.setdefault(key, FakeDevice())

    def check_for(self, svc: ServiceConfig) -> _ScriptedCheck:
        self.made.append(svc.id)
        return _ScriptedCheck(self, svc)

    async def restart(self, action: RestartAction, timeout_s: float) -> ActionResult:
        key = _action_key(action)
        self.restarts.append((self.clock.monotonic(), key))
        dev = self.devices.get(key)
        if dev is not None and dev.heal_on_restart:
            dev.healthy = True
        return ActionResult(True, "HTTP 200", 0.0)


def _action_key(action: RestartAction) -> str:
    # Tests name restart actions `{ command = ["restart", "<device key>"] }`.
    argv = getattr(action, "argv", ("", ""))
    return str(argv[-1])


class _ScriptedCheck:
    def __init__(self, fleet: FakeFleet, svc: ServiceConfig) -> None:
        self._fleet = fleet
        self._svc = svc

    async def run(self, endpoint: str) -> CheckResult:
        dev = self._fleet.device(endpoint or self._svc.id)
        dev.checks += 1
        kind = self._svc.check_type
        if dev.healthy:
            return CheckResult(ServiceStatus.HEALTHY, dev.latency_ms, check=kind, value=dev.value, reboot=dev.reboot)
        return CheckResult(ServiceStatus.UNHEALTHY, dev.latency_ms, dev.error, failure_type=dev.failure_type,
                           check=kind, value=dev.value)

    def describe_error(self, exc: BaseException) -> tuple[str, FailureType]:
        return str(exc), FailureType.SERVICE_UNAVAILABLE

    async def close(self) -> None:
        self._fleet.closed.append(self._svc.id)


def service(sid: str, *, group: str = "rack", restart: bool = True, **extra: str) -> str:
    lines = ["[[services]]", f'id = "{sid}"', f'endpoint = "http://{sid}.test"', f'group = "{group}"']
    if restart:
        lines.append(f'restart = {{ command = ["restart", "http://{sid}.test"] }}')
    lines += [f"{k} = {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


class EngineHarness:
    """Engine + fleet + recorded events. Use `async with` or call start()/stop()."""

    def __init__(self, config_text: str, tmp_path: Path, fleet: FakeFleet | None = None) -> None:
        self.fleet = fleet or FakeFleet()
        self.clock = self.fleet.clock
        self.path = tmp_path / "faultwatch.toml"
        self.path.write_text(config_text, encoding="utf-8")
        self.config: Config = parse_config(config_text, label="test.toml")
        self.journal = Journal.open(tmp_path / "journal.db", JournalConfig(), self.clock)
        self.engine = Engine(self.config, clock=self.clock, journal=self.journal, checks=self.fleet.check_for,
                             restarts=self.fleet.restart)
        self.events: list[Event] = []
        self.engine.listeners.append(self.events.append)

    async def __aenter__(self) -> EngineHarness:
        await self.engine.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.engine.stop()
        self.journal.close()

    async def advance(self, seconds: float) -> None:
        await self.clock.advance(seconds, step=0.25)

    def of(self, kind: type, service: str | None = None) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind) and (service is None or e.service == service)]

    def dev(self, sid: str) -> FakeDevice:
        return self.fleet.device(f"http://{sid}.test")
