"""Scenario files: timed behaviour changes for the simulated devices.

```toml
repeat_every = 120          # optional: start again every 120 s (the demo loops forever)

[[step]]
at = 20.0                   # seconds after the scenario (or this repetition) starts
device = "r01-d003"         # or devices = ["a", "b"]
behaviour = "down"
# any other key is a parameter of the behaviour (delay_ms, p, period_s...) or a device setting
# (sticky, after_restart, reboot_s, reboot_as)
```

`ScenarioRunner` applies the steps on time using the injected clock, so a test moves fake time instead
of waiting. Every problem is one-line ValueError naming the step index (0-based, like config paths).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from core.sim.devices import BEHAVIOURS, REBOOT_MODES, check_params
from core.logs import SIM as log

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

if TYPE_CHECKING:
    from core.clock import Clock
    from core.sim.server import SimServer


_STEP_KEYS = frozenset({"at", "device", "devices", "behaviour"})
_DEVICE_SETTINGS = frozenset({"sticky", "after_restart", "reboot_s", "reboot_as"})


@dataclass(frozen=True)
class Step:
    at: float
    devices: tuple[str, ...]
    behaviour: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    steps: tuple[Step, ...]
    repeat_every: float | None = None


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where} must be a finite number, got {value!r}")
    return float(value)


def check_step(index: int, table: Any) -> Step:
    """Validate one [[step]] table."""
    where = f"step[{index}]"
    if not isinstance(table, dict):
        raise ValueError(f"{where}: expected a table, got {table!r}")
    if "at" not in table:
        raise ValueError(f"{where}.at: is required")
    at = _number(table["at"], f"{where}.at")
    if at < 0:
        raise ValueError(f"{where}.at: must be >= 0, got {at:g}")
    if ("device" in table) == ("devices" in table):
        raise ValueError(f"{where}: give exactly one of 'device' or 'devices'")
    if "device" in table:
        raw = [table["device"]]
        dkey = "device"
    else:
        raw = table["devices"]
        dkey = "devices"
        if not isinstance(raw, list) or not raw:
            raise ValueError(f"{where}.devices: expected a non-empty array of device ids")
    for d in raw:
        if not isinstance(d, str) or not d:
            raise ValueError(f"{where}.{dkey}: expected device id strings, got {d!r}")
    behaviour = table.get("behaviour")
    if not isinstance(behaviour, str):
        raise ValueError(f"{where}.behaviour: is required (one of {' | '.join(BEHAVIOURS)})")
    params = {k: v for k, v in table.items() if k not in _STEP_KEYS}
    behaviour_params = {k: v for k, v in params.items() if k not in _DEVICE_SETTINGS}
    try:
        check_params(behaviour, behaviour_params)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    if "sticky" in params and not isinstance(params["sticky"], bool):
        raise ValueError(f"{where}.sticky: expected true or false, got {params['sticky']!r}")
    if "after_restart" in params and params["after_restart"] not in BEHAVIOURS:
        raise ValueError(f"{where}.after_restart: unknown behaviour {params['after_restart']!r}")
    if "reboot_as" in params and params["reboot_as"] not in REBOOT_MODES:
        raise ValueError(f"{where}.reboot_as: expected one of {' | '.join(REBOOT_MODES)}, "
                         f"got {params['reboot_as']!r}")
    if "reboot_s" in params and _number(params["reboot_s"], f"{where}.reboot_s") < 0:
        raise ValueError(f"{where}.reboot_s: must be >= 0, got {params['reboot_s']!r}")
    return Step(at=at, devices=tuple(raw), behaviour=behaviour, params=params)


def parse_scenario(text: str, label: str = "<scenario>") -> Scenario:
    """Parse scenario TOML. Raises ValueError: `label: step[i].key: what is wrong`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{label}: TOML syntax error: {exc}") from None
    try:
        return _build(data)
    except ValueError as exc:
        raise ValueError(f"{label}: {exc}") from None


def load_scenario(path: str | Path) -> Scenario:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{p}: cannot read: {exc}") from None
    return parse_scenario(text, label=p.name)


def _build(data: dict[str, Any]) -> Scenario:
    for key in data:
        if key not in ("step", "repeat_every"):
            raise ValueError(f"{key}: unknown key (expected [[step]] tables and repeat_every)")
    raw = data.get("step", [])
    if not isinstance(raw, list):
        raise ValueError("step: expected an array of tables ([[step]])")
    steps = tuple(check_step(i, t) for i, t in enumerate(raw))
    repeat: float | None = None
    if "repeat_every" in data:
        repeat = _number(data["repeat_every"], "repeat_every")
        last = max((s.at for s in steps), default=0.0)
        if repeat <= 0 or repeat <= last:
            raise ValueError(f"repeat_every: must be greater than the last step's 'at' ({last:g}), got {repeat:g}")
    return Scenario(steps=steps, repeat_every=repeat)


class ScenarioRunner:
    """Applies scenario steps to a SimServer's devices on time.

    Attributes:
        applied: steps applied so far (counting repetitions).
    """

    def __init__(self, server: SimServer, steps: Scenario | Sequence[Step], clock: Clock | None = None,
                 *, repeat_every: float | None = None) -> None:
        if isinstance(steps, Scenario):
            repeat_every = steps.repeat_every if repeat_every is None else repeat_every
            steps = steps.steps
        ordered = sorted(enumerate(steps), key=lambda p: (p[1].at, p[0]))
        for i, step in ordered:
            for d in step.devices:
                try:
                    server.device(d)
                except KeyError:
                    raise ValueError(f"step[{i}]: unknown device {d!r}") from None
        if repeat_every is not None and ordered and repeat_every <= ordered[-1][1].at:
            raise ValueError(f"repeat_every: must be greater than the last step's 'at' ({ordered[-1][1].at:g})")
        self._server = server
        self._steps = [s for _, s in ordered]
        self._clock: Clock = clock or server.clock
        self.repeat_every = repeat_every
        self.applied = 0

    async def run(self) -> None:
        """Apply every step at its time; with repeat_every, loop until cancelled."""
        start = self._clock.monotonic()
        cycle = 0
        while True:
            base = start + cycle * (self.repeat_every or 0.0)
            for step in self._steps:
                wait = base + step.at - self._clock.monotonic()
                if wait > 0:
                    await self._clock.sleep(wait)
                self.apply(step)
            if not self.repeat_every:
                return
            cycle += 1
            wait = start + cycle * self.repeat_every - self._clock.monotonic()
            if wait > 0:
                await self._clock.sleep(wait)

    def apply(self, step: Step) -> None:
        for d in step.devices:
            self._server.device(d).set_behaviour(step.behaviour, **dict(step.params))
        self.applied += 1
        log.info("sim scenario: t=%g %s -> %s", step.at, ",".join(step.devices), step.behaviour)
