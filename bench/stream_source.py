"""A stand-in engine for console benchmarks: the real /api/stream (core/api_stream.py StreamHub) over
synthetic services that each "get checked" once per interval, with no checks and no simulated rack.

    .venv/bin/python bench/stream_source.py --devices 1000 --port 8765 [--interval 1.0]

On a 2-core machine, five real engines each checking 1,000 simulated devices (and serving those
devices) need more CPU than the machine has, so they cannot show what a console attached to five
busy sites costs. This process sends exactly what such an engine sends a console: every service's
snapshot changing once per interval (latency, counters, check time), deltas every 0.25 s, and a
probe event now and then. bench/gui_lag.py `--engines N --synthetic` uses it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import sys
import time
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.api_stream import EngineReads, StreamHub  # noqa: E402
from core.events import BreakerState, Event, ProbeEvent, ServiceStatus  # noqa: E402
from core.snapshot import AlertView, BreakerView, EngineStats, ServiceSnapshot  # noqa: E402


class Fleet:
    def __init__(self, devices: int, interval_s: float, site: str) -> None:
        self.interval_s = interval_s
        now = time.time()
        self.snaps = {s.id: s for s in (ServiceSnapshot(
            id=f"{site}-d{i:04d}", name=f"Device {i}", group=f"rack-{i % 20:02d}",
            endpoint=f"http://10.0.{i // 250}.{i % 250}:8080", active_endpoint=f"http://10.0.{i // 250}.{i % 250}:8080",
            active_endpoint_index=0, status=ServiceStatus.HEALTHY, failed=False, consecutive_failures=0,
            last_latency_ms=2.0, p50_ms=2.0, p95_ms=4.0, last_check_wall=now, last_ok_wall=now, last_error=None,
            stale=False, breaker=BreakerView(BreakerState.CLOSED, 0, 0, 1, 0, 2, 5, None), recovery=None,
            paused=False, maintenance=False, maintenance_until_wall=None, heartbeat="", storm_tripped=False,
            slow_threshold_ms=1000.0, timeout_ms=1000.0, check_interval_s=interval_s, restart_action="",
            checks_total=0, restarts_total=0, latencies_ms=(2.0,) * 10) for i in range(devices))}
        self.checks = 0
        self.seq = 0
        self.listeners: list[object] = []
        self.hub: StreamHub | None = None

    async def run(self) -> None:
        ids = list(self.snaps)
        rng = random.Random(1)
        step = 0.05
        per_step = max(1, int(len(ids) * step / self.interval_s))
        i = 0
        while True:
            await asyncio.sleep(step)
            now = time.time()
            snaps = dict(self.snaps)
            for _ in range(per_step):
                sid = ids[i % len(ids)]
                i += 1
                s = snaps[sid]
                ms = round(1.5 + rng.random() * 3, 2)
                snaps[sid] = dataclasses.replace(s, last_latency_ms=ms, last_check_wall=now, last_ok_wall=now,
                                                 checks_total=s.checks_total + 1,
                                                 latencies_ms=s.latencies_ms[1:] + (ms,))
                self.checks += 1
            self.snaps = snaps
            if rng.random() < 0.1 and self.hub is not None:  # a verdict change now and then
                self.seq += 1
                self.hub.publish(ProbeEvent(service=ids[rng.randrange(len(ids))], mono=0.0, wall=now, seq=self.seq,
                                            status=ServiceStatus.HEALTHY, latency_ms=2.0, error=None,
                                            consecutive_failures=0))

    def events_after(self, since: int, limit: int) -> list[Event]:
        return []


async def main_async(devices: int, port: int, interval_s: float, site: str) -> None:
    fleet = Fleet(devices, interval_s, site)
    started = time.monotonic()

    def stats() -> EngineStats:
        elapsed = max(1e-9, time.monotonic() - started)
        return EngineStats(fleet.checks, fleet.checks / elapsed, 0.0, devices, fleet.seq)

    alerts: list[AlertView] = []
    reads = EngineReads(snapshots=lambda: fleet.snaps, alerts=lambda: alerts, stats=stats,
                        last_seq=lambda: fleet.seq, events_after=fleet.events_after,
                        journal_events=lambda service, limit: [], latency=lambda service, since: [],
                        rollup=lambda service, since: [])
    hub = StreamHub(reads, site=site, interval_s=0.25)
    fleet.hub = hub
    app = web.Application()
    hub.add_routes(app)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    hub.start()
    print(f"stream source {site} on http://127.0.0.1:{port}: {devices} devices at {interval_s:g} s", file=sys.stderr,
          flush=True)
    await fleet.run()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--site", default="site")
    ns = p.parse_args(argv)
    try:
        asyncio.run(main_async(ns.devices, ns.port, ns.interval, ns.site))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
