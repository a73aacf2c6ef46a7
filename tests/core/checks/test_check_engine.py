"""The real engine with tcp and tls services against loopback servers: verdicts flow into probe events,
breaker and journal exactly as for http (the engine never branches on the type).

Real sockets and the real clock with fast timings; waits are bounded polls on engine progress.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Callable

from core.config import parse_config
from core.assembly import open_engine
from core.engine import Engine
from core.events import Event, ProbeEvent, ServiceStatus

FAST = """
[fault_detection]
check_interval_seconds = 0.1
timeout_seconds = 1.0
slow_response_threshold_ms = 500
max_failures = 2
jitter_fraction = 0.0
[circuit_breaker]
failure_threshold = 2
success_threshold = 1
timeout_seconds = 0.3
[api]
enabled = false
"""


async def wait_for(cond: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _probes(events: list[Event], service: str) -> list[ProbeEvent]:
    return [e for e in events if isinstance(e, ProbeEvent) and e.service == service]


async def _engine(tmp_path: Path, services: str) -> tuple[Engine, list[Event]]:
    config = parse_config(FAST + services, label="net.toml")
    engine = open_engine(config, state_dir=str(tmp_path))
    events: list[Event] = []
    engine.listeners.append(events.append)
    await engine.start()
    return engine, events


async def test_tcp_and_tls_services_run_in_the_engine(tmp_path: Path, tls_server, certs) -> None:
    accepted = [0]

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted[0] += 1
        writer.close()

    camera = await asyncio.start_server(on_client, "127.0.0.1", 0)
    cam_port = camera.sockets[0].getsockname()[1]
    panel_port = await tls_server(certs.warn)  # 14 days left: degraded, not failed
    services = f"""
[[services]]
id = "cam-1"
group = "line-1"
check = {{ type = "tcp", host = "127.0.0.1", port = {cam_port} }}

[[services]]
id = "panel-1"
group = "line-1"
ca_bundle = "{certs.ca_file}"
check = {{ type = "tls", host = "127.0.0.1", port = {panel_port}, warn_days = 21, critical_days = 7 }}
"""
    engine, events = await _engine(tmp_path, services)
    try:
        snaps = engine.snapshots
        await wait_for(lambda: snaps()["cam-1"].status is ServiceStatus.HEALTHY, "camera healthy")
        await wait_for(lambda: snaps()["panel-1"].status is ServiceStatus.DEGRADED, "panel degraded")
        assert snaps()["panel-1"].last_error == "certificate expires in 14 days"
        assert snaps()["panel-1"].breaker.state.value == "closed"  # degraded is a success for the breaker
        assert accepted[0] >= 1
        # The camera's port goes away: refused, counted, failed, breaker opens.
        camera.close()
        await camera.wait_closed()
        await wait_for(lambda: snaps()["cam-1"].failed, "camera failed")
        assert snaps()["cam-1"].last_error == "connection refused"
        await wait_for(lambda: snaps()["cam-1"].breaker.state.value != "closed", "camera breaker open")
        # It comes back on the same port: healthy again through half-open.
        camera = await asyncio.start_server(on_client, "127.0.0.1", cam_port)
        await wait_for(lambda: snaps()["cam-1"].status is ServiceStatus.HEALTHY, "camera healthy again")
    finally:
        await engine.stop()
        camera.close()
        await camera.wait_closed()
    cam = _probes(events, "cam-1")
    assert [p.status for p in cam][:1] == [ServiceStatus.HEALTHY]
    failing = [p for p in cam if p.status is ServiceStatus.UNHEALTHY]
    assert [p.consecutive_failures for p in failing[:2]] == [1, 2]
    assert all(p.error == "connection refused" for p in failing), [p.error for p in failing]
    assert cam[-1].status is ServiceStatus.HEALTHY
    panel = _probes(events, "panel-1")
    assert panel and panel[0].status is ServiceStatus.DEGRADED and panel[0].error == "certificate expires in 14 days"
    # Everything the listeners saw was journaled first.
    assert all(e.seq > 0 for e in events)


async def test_probe_events_carry_the_check_type_and_value(tmp_path: Path, tls_server, certs) -> None:
    panel_port = await tls_server(certs.warn)
    services = f"""
[[services]]
id = "panel-1"
ca_bundle = "{certs.ca_file}"
check = {{ type = "tls", host = "127.0.0.1", port = {panel_port} }}
"""
    engine, events = await _engine(tmp_path, services)
    try:
        await wait_for(lambda: bool(_probes(events, "panel-1")), "a probe event")
    finally:
        await engine.stop()
    first = _probes(events, "panel-1")[0]
    assert first.check == "tls"
    assert isinstance(first.value, float) and 14 < first.value < 15
