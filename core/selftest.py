"""Self-test: one full fault cycle on a simulated device, start to finish, with the real engine.

A device fails → its checks go unhealthy → its breaker opens → the engine restarts it → the device
reboots → the breaker goes half-open and closes → the restart is verified. Used by
`faultwatch --self-test`, so a packaged build proves its HTTP stack, journal and recovery work.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time

from core.config import parse_config
from core.assembly import open_engine
from core.engine import Engine
from core.events import BreakerEvent, BreakerState, Event, ProbeEvent, RecoveryEvent, RecoveryOutcome, ServiceStatus
from core.sim.devices import DeviceSpec
from core.sim.server import SimServer

STEPS = ("healthy", "unhealthy", "breaker open", "restart started", "breaker half-open", "breaker closed",
         "restart verified")


def _config(server: SimServer) -> str:
    base = server.base_url("selftest-device")
    return f"""
[fault_detection]
check_interval_seconds = 0.2
timeout_seconds = 1
max_failures = 2
[circuit_breaker]
failure_threshold = 2
success_threshold = 2
timeout_seconds = 1
[recovery]
restart_base_delay_seconds = 0.2
restart_max_delay_seconds = 1
verify_checks = 2
verify_timeout_seconds = 10
[api]
enabled = false
[[services]]
id = "selftest-device"
endpoint = "{base}"
restart = {{ http = {{ url = "{base}/restart" }} }}
"""


async def _cycle(state_dir: str, timeout_s: float) -> list[str]:
    seen: list[str] = []
    done = asyncio.Event()

    def note(step: str) -> None:
        if step not in seen and (not seen or STEPS.index(step) > STEPS.index(seen[-1])):
            seen.append(step)
            print(f"self-test: {step}", flush=True)
        if step == STEPS[-1]:
            done.set()

    def watch(event: Event) -> None:
        if isinstance(event, ProbeEvent):
            if event.status is ServiceStatus.HEALTHY and not seen:
                note("healthy")
            elif event.status is ServiceStatus.UNHEALTHY and seen == ["healthy"]:
                note("unhealthy")
        elif isinstance(event, BreakerEvent):
            name = {BreakerState.OPEN: "breaker open", BreakerState.HALF_OPEN: "breaker half-open",
                    BreakerState.CLOSED: "breaker closed"}.get(event.to_state)
            if name and seen:
                note(name)
        elif isinstance(event, RecoveryEvent) and seen:
            if event.outcome is RecoveryOutcome.STARTED:
                note("restart started")
            elif event.outcome is RecoveryOutcome.SUCCEEDED:
                note("restart verified")

    async with SimServer([DeviceSpec("selftest-device", reboot_s=0.5)]) as server:
        config = parse_config(_config(server), label="self-test")
        engine = open_engine(config, state_dir=state_dir)
        engine.listeners.append(watch)
        await engine.start()
        try:
            deadline = time.monotonic() + timeout_s
            while not seen and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            server.device("selftest-device").set_behaviour("down")
            try:
                await asyncio.wait_for(done.wait(), max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                pass
        finally:
            await engine.stop()
    return seen


def run_self_test(state_dir: str | None = None, timeout_s: float = 30.0) -> int:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="faultwatch-selftest-") as tmp:
        seen = asyncio.run(_cycle(state_dir or tmp, timeout_s))
    elapsed = time.perf_counter() - started
    if seen == list(STEPS):
        print(f"self-test: PASSED, full cycle in {elapsed:.1f} s", flush=True)
        return 0
    missing = [s for s in STEPS if s not in seen]
    print(f"self-test: FAILED after {elapsed:.1f} s; never saw: {', '.join(missing)}", file=sys.stderr, flush=True)
    return 1
