"""`python -m core.sim`: run a simulated fleet (or the demo rack) until Ctrl+C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from core.sim.demo import demo_config_toml, demo_devices, demo_scenario_path, fleet_config_toml
from core.sim.devices import make_fleet
from core.sim.scenario import ScenarioRunner, load_scenario
from core.sim.server import SimServer


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m core.sim", description=__doc__)
    p.add_argument("--devices", type=int, default=100, help="fleet size (ignored with --demo)")
    p.add_argument("--group-size", type=int, default=40, help="devices per rack")
    p.add_argument("--seed", type=int, default=0, help="seed of the fleet's behaviour mix")
    p.add_argument("--all-healthy", action="store_true", help="every device healthy (benchmarks)")
    p.add_argument("--demo", action="store_true", help="serve the demo rack (and its scenario)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0: any free port")
    p.add_argument("--scenario", type=Path, help="scenario TOML to play")
    p.add_argument("--heartbeat-url", help="base URL devices push heartbeats to (the engine's API)")
    p.add_argument("--write-config", type=Path, help="write a Faultwatch config for this fleet here")
    p.add_argument("--interval", type=float, default=1.0, help="check interval in --write-config")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


async def _main(ns: argparse.Namespace) -> int:
    if ns.demo:
        specs = demo_devices()
    else:
        specs = make_fleet(ns.devices, group_size=ns.group_size, seed=ns.seed,
                           mix={"healthy": 1.0} if ns.all_healthy else None)
    scenario_path = ns.scenario or (demo_scenario_path() if ns.demo else None)
    scenario = None
    if scenario_path is not None:
        try:
            scenario = load_scenario(scenario_path)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with SimServer(specs, host=ns.host, port=ns.port, heartbeat_url=ns.heartbeat_url) as server:
        runner_task = None
        if scenario is not None:
            try:
                runner = ScenarioRunner(server, scenario)
            except ValueError as exc:
                print(f"error: {scenario_path}: {exc}", file=sys.stderr)
                return 2
            runner_task = asyncio.create_task(runner.run(), name="sim-scenario")
        if ns.write_config:
            text = (demo_config_toml(server) if ns.demo
                    else fleet_config_toml(server, interval_s=ns.interval))
            ns.write_config.write_text(text, encoding="utf-8")
        print(f"sim: {len(specs)} devices at {server.url}/dev/<id>  (e.g. {server.base_url(specs[0].id)}/health)"
              if specs else f"sim: no devices at {server.url}", flush=True)
        print(f"sim: control API {server.url}/sim/devices; Ctrl+C stops", flush=True)
        await stop.wait()
        if runner_task is not None:
            runner_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner_task
    print("sim: stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ns = _args(argv)
    logging.basicConfig(level=logging.INFO if ns.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return asyncio.run(_main(ns))


if __name__ == "__main__":
    sys.exit(main())
