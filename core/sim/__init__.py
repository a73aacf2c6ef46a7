"""The demo rack: simulated HTTP devices for the demo, the tests and the benchmarks.

One asyncio HTTP server (`SimServer`) hosts any number of devices, each with a behaviour (healthy,
slow, flaky, down, hanging...) that can change at any time through the Python API, the control API
(`/sim/devices`) or a scenario file. Nothing here imports Qt.
"""

from core.sim.demo import demo_config_toml, demo_devices, demo_scenario_path, fleet_config_toml
from core.sim.devices import BEHAVIOURS, Device, DeviceSpec, Reply, check_params, make_fleet
from core.sim.scenario import Scenario, ScenarioRunner, Step, load_scenario, parse_scenario
from core.sim.server import SimServer

__all__ = [
    "BEHAVIOURS", "Device", "DeviceSpec", "Reply", "Scenario", "ScenarioRunner", "SimServer", "Step",
    "check_params", "demo_config_toml", "demo_devices", "demo_scenario_path", "fleet_config_toml",
    "load_scenario", "make_fleet", "parse_scenario",
]
