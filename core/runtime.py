"""Runtime: everything one Faultwatch process runs on its engine loop.

The engine, its loopback API listener (heartbeats, /metrics, control API) and, in demo mode, the
simulated rack with its scenario. Headless mode runs a Runtime on the main thread's loop; the GUI runs
one on a worker thread (core/runner.py) so socket work never competes with painting.
"""

from __future__ import annotations

import asyncio
import gc
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from core import paths
from core.api import ApiServer
from core.api_auth import ApiSecurity, Gate, exposure_problem, make_ssl_context
from core.api_stream import EngineReads, StreamHub
from core.clock import Clock, SystemClock
from core.config import Config, ConfigError, load_config, parse_listen
from core.assembly import open_engine
from core.engine import Engine
from core.events import ActionEvent
from core.health import HEALTH_STATE_KEY, HealthProbe
from core.token import load_or_create_token
from core.logs import ENGINE as log

if TYPE_CHECKING:
    from core.sim.netdevices import NetDevices


@dataclass(frozen=True, slots=True)
class DemoOptions:
    devices: int | None = None  # None: the curated demo rack; n: a generated fleet of n devices
    scenario: bool = True
    interval_s: float = 1.0


class Runtime:
    """Engine + API listener (+ demo rack).

    Attributes:
        engine: the engine, once started.
        api: the API listener, if enabled.
        config_path: the config file in use (for the demo, the one generated in the state dir).
    """

    def __init__(self, config_path: str | None, *, state_dir: str | None = None, demo: DemoOptions | None = None,
                 listen: str | None = None, clock: Clock | None = None) -> None:
        self.config_path = config_path
        self.state_dir = state_dir
        self.demo = demo
        self.listen = listen
        self.clock = clock or SystemClock()
        self.engine: Engine | None = None
        self.api: ApiServer | None = None
        self.token_where = ""
        self._net: NetDevices | None = None  # the demo's tcp / tls devices
        self._sim: object | None = None
        self._scenario_task: asyncio.Task[None] | None = None
        self._industrial: object | None = None
        self._industrial_task: asyncio.Task[None] | None = None
        self._stopping = False

    def load(self) -> Config:
        """Validate the config (ConfigError on a bad one) before anything starts."""
        if self.demo is not None:
            raise RuntimeError("demo configs are generated at start")
        assert self.config_path is not None
        return load_config(self.config_path)

    async def start(self) -> Engine:
        if self.demo is not None:
            config = await self._start_demo()
        else:
            config = self.load()
        listen = self.listen or (config.api.listen if config.api.enabled else None)
        if listen:
            # Refused before anything starts: an exposed listener without TLS is a config error.
            problem = exposure_problem(config.api, parse_listen(listen)[0], listen)
            if problem:
                raise ConfigError(problem)
            make_ssl_context(config.api)
        engine = open_engine(config, clock=self.clock, state_dir=self.state_dir)
        await engine.start()
        self.engine = engine
        if listen:
            host, port = parse_listen(listen)
            token, self.token_where = load_or_create_token(config.api.token_env, paths.state_dir(self.state_dir))
            self.api = make_api_server(engine, config, host, port, token,
                                       config_path=lambda: engine.config.source or self.config_path,
                                       health=self._health_probe(engine))
            await self.api.start()
            log.info("api listening on %s (token from %s)", self.api.url, self.token_where)
            if self._sim is not None:
                self._sim.heartbeat_url = self.api.url  # type: ignore[attr-defined]
        return engine

    async def _start_demo(self) -> Config:
        from core.sim.demo import demo_config_toml, demo_devices, demo_scenario_path, fleet_config_toml
        from core.sim.devices import make_fleet
        from core.sim.scenario import ScenarioRunner, load_scenario
        from core.sim.server import SimServer

        assert self.demo is not None
        specs = demo_devices() if self.demo.devices is None else make_fleet(self.demo.devices)
        sim = SimServer(specs)
        await sim.start()
        self._sim = sim
        if self.demo.devices is None:
            text = demo_config_toml(sim, api_listen=self.listen or "127.0.0.1:0")
            text += await self._start_net_devices()
            text += await self._start_industrial()
        else:
            text = fleet_config_toml(sim, interval_s=self.demo.interval_s, api_listen=self.listen or "127.0.0.1:0")
        path = paths.state_dir(self.state_dir) / "demo.toml"
        path.write_text(text, encoding="utf-8")
        self.config_path = str(path)
        if self.demo.scenario and self.demo.devices is None:
            runner = ScenarioRunner(sim, load_scenario(demo_scenario_path()))
            self._scenario_task = asyncio.get_running_loop().create_task(runner.run(), name="demo:scenario")
        log.info("demo rack: %d devices at %s", len(specs), sim.url)
        return load_config(path)

    async def _start_industrial(self) -> str:
        """The demo's Modbus PLCs, MQTT sensors and PDU (core/sim/industrial.py): their [[services]]."""
        from core.sim.industrial import IndustrialRack, IndustrialScenario

        assert self.demo is not None
        rack = IndustrialRack(self.clock)
        try:
            await rack.start()
        except Exception as exc:  # noqa: BLE001 - the demo goes on without them, and says so
            log.warning("demo rack: Modbus/MQTT devices not started (%s: %s); the rest runs",
                        type(exc).__name__, exc)
            try:
                await rack.stop()
            except Exception:  # noqa: BLE001
                pass
            return ""
        self._industrial = rack
        if self.demo.scenario:
            self._industrial_task = asyncio.get_running_loop().create_task(
                IndustrialScenario(rack).run(), name="demo:industrial-scenario")
        return "\n" + rack.config_toml()

    async def _stop_industrial(self) -> None:
        if self._industrial_task is not None:
            self._industrial_task.cancel()
            await asyncio.gather(self._industrial_task, return_exceptions=True)
        if self._industrial is not None:
            await self._industrial.stop()  # type: ignore[attr-defined]

    def _health_probe(self, engine: Engine) -> HealthProbe:
        def write_journal() -> None:
            # A journal that cannot write holds the value in memory and goes degraded instead of
            # raising; the write still makes it try the disk, and its health says whether it could.
            engine.journal.save_state(HEALTH_STATE_KEY, self.clock.wall())
            health = engine.journal.health()
            if not health.ok:
                raise RuntimeError(health.reason or "journal degraded")
        return HealthProbe(lambda: not self._stopping, write_journal, self.clock)

    async def _start_net_devices(self) -> str:
        """The demo's camera (tcp) and TLS panel, served in process; their [[services]] tables."""
        from core.sim.netdevices import NetDevices

        net = NetDevices(paths.state_dir(self.state_dir))
        await net.start()
        self._net = net
        return "\n" + "\n".join(net.services_toml())

    async def stop(self) -> None:
        self._stopping = True
        if self._scenario_task is not None:
            self._scenario_task.cancel()
            await asyncio.gather(self._scenario_task, return_exceptions=True)
        if self.api is not None:
            await self.api.stop()
        if self.engine is not None:
            await self.engine.stop()
        if self._net is not None:
            await self._net.stop()
        if self._sim is not None:
            await self._sim.stop()  # type: ignore[attr-defined]
        await self._stop_industrial()


def make_api_server(engine: Engine, config: Config, host: str, port: int, token: str,
                    config_path: Callable[[], str | None] | None = None,
                    health: "HealthProbe | None" = None) -> ApiServer:
    """The API listener with its gate (roles, rate limit) and the stream for attached consoles."""
    api = config.api
    viewer = os.environ.get(api.viewer_token_env, "").strip() if api.viewer_token_env else ""
    if viewer == token:
        viewer = ""  # the same secret cannot mean two roles: it is the operator's

    def refused(what: str, detail: str) -> None:
        engine.publish(ActionEvent(service="", mono=engine.clock.monotonic(), wall=engine.clock.wall(),
                                   command=what, origin="api", ok=False, detail=detail))

    gate = Gate(ApiSecurity.from_config(api, host, token, viewer), engine.clock, refused)
    journal = engine.journal

    def rollup(service: str, since: float) -> list[tuple[float, float | None, float | None, float | None]]:
        return [(r.minute_wall, r.mean_ms, r.min_ms, r.max_ms) for r in journal.latency_rollup(service, since)]

    reads = EngineReads(
        snapshots=engine.snapshots, alerts=engine.alerts, stats=engine.stats, last_seq=journal.last_seq,
        events_after=lambda since, limit: journal.events(since_seq=since, limit=limit),
        journal_events=lambda service, limit: journal.events(service=service, limit=limit, newest_first=True),
        latency=journal.latency, rollup=rollup, values=engine.value_history)
    hub = StreamHub(reads, site=api.site, interval_s=api.stream_interval_seconds)
    engine.listeners.append(hub.publish)
    return ApiServer(engine, engine.beat, token, host, port, config_path, health,
                     gate=gate, stream=hub, ssl_context=make_ssl_context(api))


def tune_gc() -> None:
    """Called once the engine runs: keeps full collections rare and short for a long-lived process.

    Measured (docs/benchmarks.md): at 2,000 devices, snapshots living a quarter second were promoted
    and gen-2 collections paused the loop 64-166 ms; freezing what start-up allocated and raising the
    gen-0 threshold brought the longest pause to 10-17 ms and the loop lag p99 from 25 to 12-17 ms.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
