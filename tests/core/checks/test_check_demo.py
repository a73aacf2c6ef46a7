"""The demo rack's camera (tcp) and TLS panel: served in process, checked through the registry, and
part of the demo the runtime starts."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from core.checks.base import CheckContext, CheckResult, execute
from core.checks.registry import check_types
from core.config import parse_config
from core.events import ServiceStatus
from core.runtime import DemoOptions, Runtime
from core.sim.netdevices import NetDevices


async def _check_all(net: NetDevices) -> dict[str, CheckResult]:
    config = parse_config("\n".join(net.services_toml()), label="demo")
    out = {}
    for svc in config.services:
        check = check_types()[svc.check_type].make(svc.check, CheckContext(), svc)
        out[svc.id] = await execute(check, "", check_type=svc.check_type, timeout_s=2.0, slow_ms=1000.0)
    return out


async def test_camera_and_panel_answer_their_checks(tmp_path: Path) -> None:
    net = NetDevices(tmp_path, camera_outage=None)
    await net.start()
    try:
        results = await _check_all(net)
        assert results["cam-l1"].status is ServiceStatus.HEALTHY and results["cam-l1"].check == "tcp"
        panel = results["panel-l2"]
        assert panel.status is ServiceStatus.DEGRADED and panel.error == "certificate expires in 12 days"
        assert dict(panel.detail)["verified"] == "yes"  # through the demo CA named as ca_bundle
        port = net.camera_port
        await net.set_camera_up(False)
        down = (await _check_all(net))["cam-l1"]
        assert down.status is ServiceStatus.UNHEALTHY and down.error == "connection refused"
        await net.set_camera_up(True)
        assert net.camera_port == port
        assert (await _check_all(net))["cam-l1"].status is ServiceStatus.HEALTHY
    finally:
        await net.stop()


async def test_the_demo_runtime_monitors_them(tmp_path: Path) -> None:
    runtime = Runtime(None, state_dir=str(tmp_path), demo=DemoOptions(scenario=False), listen="127.0.0.1:0")
    engine = await runtime.start()
    try:
        deadline = time.monotonic() + 15
        while not (engine.snapshots()["cam-l1"].status is ServiceStatus.HEALTHY
                   and engine.snapshots()["panel-l2"].status is ServiceStatus.DEGRADED):
            assert time.monotonic() < deadline, {k: engine.snapshots()[k].status for k in ("cam-l1", "panel-l2")}
            await asyncio.sleep(0.05)
        assert engine.snapshots()["panel-l2"].last_error == "certificate expires in 12 days"
        assert engine.snapshots()["plc-l1"].name == "PLC line 1"  # the rest of the rack is still there
    finally:
        await runtime.stop()
