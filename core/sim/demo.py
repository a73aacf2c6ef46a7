"""The demo rack: a small plant of named devices, and the Faultwatch config that monitors it.

`demo_devices()` is what `faultwatch --demo` serves; `resources/scenarios/demo.toml` breaks and
recovers some of them on a loop. `demo_config_toml()` and `fleet_config_toml()` write configs for a
running SimServer (fast timings for the demo; plain ones for benchmark fleets), in the schema of
`core.config`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from core.sim.devices import DeviceSpec

if TYPE_CHECKING:
    from core.sim.server import SimServer


def demo_devices() -> list[DeviceSpec]:
    """22 devices in three racks: mostly healthy, one slow, one flaky, one flapping, one with a standby."""
    line, cold, edge = "line-1", "cold-store", "edge"
    return [
        DeviceSpec("plc-l1", group=line, name="PLC line 1", heartbeat_interval_s=5.0),
        DeviceSpec("plc-l2", group=line, name="PLC line 2", heartbeat_interval_s=5.0),
        DeviceSpec("hmi-l1", "slow", {"delay_ms": 450}, group=line, name="HMI panel line 1"),
        DeviceSpec("robot-c3", group=line, name="Robot cell 3"),
        DeviceSpec("conveyor-4", "flapping", {"period_s": 45}, group=line, name="Conveyor drive 4"),
        DeviceSpec("vision-l1", group=line, name="Vision camera line 1"),
        # Goes down in the demo scenario; a restart brings it back.
        DeviceSpec("label-l2", group=line, name="Label printer line 2", reboot_s=3.0),
        DeviceSpec("cs-sensor-1", group=cold, name="Cold-store sensor 1", heartbeat_interval_s=2.0),
        DeviceSpec("cs-sensor-2", group=cold, name="Cold-store sensor 2", heartbeat_interval_s=2.0),
        DeviceSpec("cs-sensor-3", "flaky", {"p": 0.05, "seed": 7}, group=cold, name="Cold-store sensor 3",
                   heartbeat_interval_s=2.0),
        DeviceSpec("cs-sensor-4", group=cold, name="Cold-store sensor 4", heartbeat_interval_s=2.0),
        DeviceSpec("cs-compressor", group=cold, name="Compressor controller"),
        DeviceSpec("cs-door", group=cold, name="Door controller"),
        DeviceSpec("cs-logger", group=cold, name="Temperature logger"),
        DeviceSpec("cs-defrost", group=cold, name="Defrost timer"),
        DeviceSpec("gw-a", group=edge, name="Gateway A"),
        DeviceSpec("gw-b", group=edge, name="Gateway B", reboot_s=4.0),
        DeviceSpec("gw-b-backup", group=edge, name="Gateway B (standby)", backup_of="gw-b"),
        DeviceSpec("mqtt-broker", group=edge, name="MQTT broker"),
        DeviceSpec("historian", group=edge, name="Historian"),
        DeviceSpec("nvr", group=edge, name="Camera recorder"),
        DeviceSpec("ups", group=edge, name="UPS monitor", heartbeat_interval_s=10.0),
    ]


def demo_scenario_path() -> Path:
    """resources/scenarios/demo.toml, from the source tree or a PyInstaller bundle."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        candidate = Path(bundle) / "resources" / "scenarios" / "demo.toml"
        if candidate.exists():
            return candidate
    return Path(__file__).resolve().parents[2] / "resources" / "scenarios" / "demo.toml"


def _s(text: str) -> str:
    # A JSON string with ASCII escapes is a valid TOML basic string.
    return json.dumps(text)


def _n(value: float) -> str:
    return repr(float(value))


_DEMO_SECTIONS = """\
[fault_detection]
check_interval_seconds = 1.0
timeout_seconds = 2.0
slow_response_threshold_ms = 300.0
max_failures = 3

[circuit_breaker]
failure_threshold = 3
success_threshold = 2
timeout_seconds = 10.0

[recovery]
restart_base_delay_seconds = 1.0
restart_max_delay_seconds = 20.0
verify_checks = 2
verify_timeout_seconds = 30.0
reset_after_stable_seconds = 60.0
failback_after_checks = 3

[heartbeat]
missed_intervals = 3
"""


def _services(server: SimServer, specs: Iterable[DeviceSpec]) -> list[str]:
    specs = list(specs)
    backups: dict[str, list[str]] = {}
    for spec in specs:
        if spec.backup_of:
            backups.setdefault(spec.backup_of, []).append(server.base_url(spec.id))
    lines: list[str] = []
    for spec in specs:
        if spec.backup_of:
            continue
        base = server.base_url(spec.id)
        lines += ["[[services]]",
                  f"id = {_s(spec.id)}",
                  f"name = {_s(spec.display_name)}",
                  f"endpoint = {_s(base)}",
                  'health_path = "/health"',
                  f"group = {_s(spec.group)}"]
        if spec.id in backups:
            lines.append(f"backup_endpoints = [{', '.join(_s(u) for u in backups[spec.id])}]")
        lines.append(f'restart = {{ http = {{ method = "POST", url = {_s(base + "/restart")} }} }}')
        if spec.heartbeat_interval_s:
            lines.append(f"heartbeat_interval_seconds = {_n(spec.heartbeat_interval_s)}")
        lines.append("")
    return lines


def demo_config_toml(server: SimServer, api_listen: str = "127.0.0.1:0") -> str:
    """A full Faultwatch config for the devices `server` hosts, with fast demo timings.

    Devices with heartbeats push to `server.heartbeat_url`: set it to the engine's API address once
    that is bound (with api_listen port 0 it is known only then).
    """
    head = [f"# Faultwatch demo rack, generated by core.sim.demo for {server.url}", "",
            _DEMO_SECTIONS, "[api]", f"listen = {_s(api_listen)}", ""]
    specs = [d.spec for d in server.devices]
    return "\n".join(head + _services(server, specs))


def fleet_config_toml(server: SimServer, interval_s: float = 1.0, devices: Iterable[DeviceSpec] | None = None,
                      api_listen: str = "127.0.0.1:0") -> str:
    """A config for a large simulated fleet (benchmarks): every device checked each `interval_s`."""
    specs = [d.spec for d in server.devices] if devices is None else list(devices)
    head = [f"# Faultwatch fleet of {len(specs)} simulated devices at {server.url}", "",
            "[fault_detection]",
            f"check_interval_seconds = {_n(interval_s)}",
            "timeout_seconds = 2.0",
            "", "[api]", f"listen = {_s(api_listen)}", ""]
    return "\n".join(head + _services(server, specs))
